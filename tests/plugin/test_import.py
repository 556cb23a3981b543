"""Auto-analysis during ``beet import``: as-is and with a match, copy and in place."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import beets
import mutagen
import pytest
from beets.test.helper import AutotagStub

from beetsplug.emotion import fields, model, tags

from .conftest import TEST_MODEL_VERSION, BeetsEnv

LRC = "[00:00.40]rain falls on the window\n[00:01.60]and I miss you\n"


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _album(env: BeetsEnv, count: int = 3, lrc_for: int = 1) -> Path:
    folder = env.incoming / "album"
    for n in range(1, count + 1):
        env.make_track(
            f"{n:02}.mp3" if n % 2 else f"{n:02}.flac",
            title=f"Tag Track {n}",
            artist="Tag Artist",
            album="Tag Album",
            track=n,
            folder=folder,
            lrc=LRC if n == lrc_for else None,
        )
    return folder


def test_asis_copy_import_tags_library_files_only(env: BeetsEnv) -> None:
    folder = _album(env)
    before = _digest(folder)

    env.run("import", "-A", str(folder))

    assert _digest(folder) == before  # the user's originals are never touched
    items = env.items()
    assert len(items) == 3
    for item in items:
        path = os.fsdecode(item.path)
        assert path.startswith(str(env.music))
        assert item.emotion_model == TEST_MODEL_VERSION
        assert tags.read_tags(item.path)[fields.MOOD] == item.mood
    with_lrc = env.items("track:1")[0]
    assert with_lrc.emotion_lyrics == "lrc"
    # the .lrc travels with the file, so a later re-analysis still finds it
    assert Path(os.fsdecode(with_lrc.path)).with_suffix(".lrc").read_text() == LRC
    assert env.items("track:2")[0].emotion_lyrics == "none"

    album = list(env.lib.albums())[0]
    assert album.album_mood in fields.MOODS


def test_import_with_applied_match_writes_tags(env: BeetsEnv) -> None:
    folder = _album(env, count=2)
    before = _digest(folder)
    stub = AutotagStub(AutotagStub.IDENT).install()
    beets.config["match"]["strong_rec_thresh"] = 0.9  # the stub's names differ a little
    try:
        env.run("import", str(folder))
    finally:
        stub.restore()

    assert _digest(folder) == before
    items = env.items()
    assert sorted(i.title for i in items) == ["Applied Track 1", "Applied Track 2"]
    for item in items:
        media = mutagen.File(os.fsdecode(item.path), easy=True)
        assert media["title"][0].startswith("Applied Track")  # the importer's own write
        found = tags.read_tags(item.path)
        assert found[fields.MOOD] == item.mood
        assert found[fields.MODEL] == TEST_MODEL_VERSION


def test_import_without_write_leaves_files_alone(env: BeetsEnv) -> None:
    beets.config["import"]["write"] = False
    folder = _album(env, count=1)
    env.run("import", "-A", str(folder))
    item = env.items()[0]
    assert item.mood in fields.MOODS
    assert tags.read_tags(item.path) == {}


def test_in_place_import_writes_into_the_files(env: BeetsEnv) -> None:
    folder = _album(env, count=1)
    env.run("import", "-A", "-C", str(folder))
    item = env.items()[0]
    assert os.fsdecode(item.path).startswith(str(folder))
    assert tags.read_tags(item.path)[fields.MOOD] == item.mood


def test_model_loads_once_per_session(env: BeetsEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    from lgfn_model.runtime.predictor import Predictor

    model.forget_loaded_models()
    calls: list[object] = []
    original = Predictor.load.__func__

    def counting(cls: type, *args: object, **kwargs: object) -> Predictor:
        calls.append(args)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(Predictor, "load", classmethod(counting))
    _album(env, count=2)
    for n in range(2):
        env.make_track(
            f"single{n}.ogg", title=f"Single {n}", album="", folder=env.incoming / "singles"
        )
    env.run("import", "-A", str(env.incoming / "album"))
    env.run("import", "-A", "-s", str(env.incoming / "singles"))
    assert len(calls) == 1
    assert len(env.items("emotion_model::.+")) == 4


def test_reimport_adopts_tags_from_the_file(env: BeetsEnv) -> None:
    path = env.make_track("tagged.flac", title="Tagged")
    values = {
        "mood": "sad",
        "emotion_happy": 0.1,
        "emotion_angry": 0.05,
        "emotion_sad": 0.7,
        "emotion_relaxed": 0.15,
        "emotion_valence": -0.5,
        "emotion_arousal": -0.25,
        "emotion_gate_audio": 0.6,
        "emotion_gate_lyrics": 0.4,
        "emotion_lyrics": "lrc",
        "emotion_model": TEST_MODEL_VERSION,
    }
    tags.write_tags(path, values)

    env.run("import", "-A", str(path))

    item = env.items()[0]
    for name, value in values.items():
        assert item[name] == (pytest.approx(value) if isinstance(value, float) else value)


def test_mood_tag_set_elsewhere_is_kept(env: BeetsEnv) -> None:
    path = env.make_track("hand.mp3", title="Hand")
    tags.write_tags(path, {"mood": "Melancholic"})

    env.run("import", "-A", str(path))

    item = env.items()[0]
    assert item.mood == "Melancholic"
    assert item.emotion_model == TEST_MODEL_VERSION
    assert tags.read_tags(item.path)["mood"] == "Melancholic"


def test_auto_off_skips_import_analysis(env: BeetsEnv) -> None:
    env.restart(auto=False)
    env.run("import", "-A", str(_album(env, count=1)))
    assert env.items()[0].get("mood", with_album=False) is None
