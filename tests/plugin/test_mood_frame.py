"""The mood is one value in every player: one ID3 frame per ID3 version (issue 23, item 1).

TagLib (pytaglib; what Navidrome, Kodi and most Linux players read tags with) maps both ID3
``TMOO`` and ``TXXX:MOOD`` to ``MOOD``: a file holding both reads as two moods. The plugin
writes ``TMOO`` in ID3v2.4 and ``TXXX:MOOD`` in ID3v2.3 (``id3_mood_frame: auto``), cleans
files that have both, and beets' own writes (``beet write``, ``modify``, import) do the same.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import beets
import mutagen
import mutagen.id3
import pytest
from beets import ui

from beetsplug.emotion import fields, tags

from .conftest import BeetsEnv

try:
    import taglib
except ImportError:  # pragma: no cover - pytaglib is in the test extra
    taglib = None

NEEDS_TAGLIB = pytest.mark.skipif(
    taglib is None, reason="pytaglib is not installed (pip install 'pytaglib>=3')"
)


def _frames(path: Path | bytes) -> dict[str, list[str]]:
    """The ID3 mood frames in the file: {"TMOO": [...], "TXXX:MOOD": [...]} (those present)."""
    id3 = mutagen.File(os.fsdecode(path)).tags
    found: dict[str, list[str]] = {}
    for frame in id3.getall("TMOO"):
        found.setdefault("TMOO", []).extend(str(t) for t in frame.text)
    for frame in id3.getall("TXXX"):
        if frame.desc.lower() == "mood":
            found.setdefault("TXXX:MOOD", []).extend(str(t) for t in frame.text)
    return found


def _id3_version(path: Path | bytes) -> tuple[int, int]:
    return tuple(mutagen.File(os.fsdecode(path)).tags.version[:2])  # type: ignore[return-value]


def _player_moods(path: Path | bytes) -> list[str]:
    """MOOD as a player reads it: TagLib's MOOD property where pytaglib is installed, else
    the same mapping done with mutagen (every TMOO and TXXX:MOOD value, or the format's own
    MOOD key)."""
    if taglib is not None:
        return _taglib_moods(path)
    return _mutagen_moods(path)


def _taglib_moods(path: Path | bytes) -> list[str]:
    with taglib.File(os.fsdecode(path)) as song:
        return list(song.tags.get("MOOD", []))


def _mutagen_moods(path: Path | bytes) -> list[str]:
    media = mutagen.File(os.fsdecode(path))
    if hasattr(media.tags, "getall"):
        frames = _frames(path)
        return frames.get("TMOO", []) + frames.get("TXXX:MOOD", [])
    for key in ("MOOD", "----:com.apple.iTunes:MOOD", "WM/Mood"):
        if key in media.tags:
            return [v.decode() if isinstance(v, bytes) else str(v) for v in media.tags[key]]
    return []


def _add_stale_frame(path: Path | bytes, mood: str) -> None:
    """What earlier versions left: the mood in both frames (the file stays ID3v2.4)."""
    media = mutagen.File(os.fsdecode(path))  # MP3 or WAV: the ID3 tag inside either
    if media.tags is None:
        media.add_tags()
    media.tags.setall("TMOO", [mutagen.id3.TMOO(encoding=3, text=[mood])])
    media.tags.add(mutagen.id3.TXXX(encoding=3, desc="MOOD", text=[mood]))
    media.save(v2_version=4)
    assert set(_frames(path)) == {"TMOO", "TXXX:MOOD"}


def _only(env: BeetsEnv) -> Any:
    (item,) = env.items()
    return item


@pytest.fixture(params=[False, True], ids=["id3v24", "id3v23"])
def id3v23(request: pytest.FixtureRequest, env: BeetsEnv) -> bool:
    beets.config["id3v23"] = request.param
    return bool(request.param)


def _expected_frame(name: str, id3v23: bool) -> str:
    # mediafile writes WAV and AIFF tags as ID3v2.4 whatever id3v23 says; MP3 follows it.
    return "TXXX:MOOD" if id3v23 and name.endswith(".mp3") else "TMOO"


# --------------------------------------------------------------------------- beet emotion -w


@pytest.mark.parametrize("name", ["one.mp3", "one.wav", "one.aiff"])
def test_emotion_write_gives_one_mood(env: BeetsEnv, id3v23: bool, name: str) -> None:
    path = env.make_track(name)
    env.add(path)
    env.run("emotion", "-w")
    mood = _only(env).mood
    assert mood in fields.MOODS
    assert _player_moods(path) == [mood]
    assert _frames(path) == {_expected_frame(name, id3v23): [mood]}
    if name.endswith(".mp3"):
        assert _id3_version(path) == ((2, 3) if id3v23 else (2, 4))
    assert tags.read_tags(path)["mood"] == mood


@NEEDS_TAGLIB
@pytest.mark.parametrize("name", ["one.mp3", "one.wav"])
def test_taglib_reads_one_mood_value(env: BeetsEnv, id3v23: bool, name: str) -> None:
    """The bug as reported: TagLib read ``MOOD: ['angry', 'angry']``."""
    path = env.make_track(name)
    env.add(path)
    env.run("emotion", "-w")
    with taglib.File(os.fsdecode(path)) as song:
        assert song.tags["MOOD"] == [_only(env).mood]


def test_a_file_with_both_frames_is_cleaned_by_the_next_run(env: BeetsEnv) -> None:
    path = env.make_track("one.mp3")
    env.add(path)
    env.run("emotion", "-w")
    mood = _only(env).mood
    _add_stale_frame(path, mood)
    assert _player_moods(path) == [mood, mood]
    assert tags.tags_differ(path, tags.values_to_write(_only(env)))

    out = env.run("emotion", "-w")  # already analysed: skipped, but the file is rewritten
    assert "skipped 1" in out and "tags written to 1 file" in out
    assert _frames(path) == {"TMOO": [mood]}
    assert _player_moods(path) == [mood]

    out = env.run("emotion", "-w")  # clean now: nothing more to write
    assert "tags written" not in out


def test_a_both_frames_file_is_cleaned_for_id3v23(env: BeetsEnv) -> None:
    path = env.make_track("one.mp3")
    env.add(path)
    env.run("emotion", "-w")
    mood = _only(env).mood
    _add_stale_frame(path, mood)
    beets.config["id3v23"] = True
    env.run("emotion", "-w")
    assert _id3_version(path) == (2, 3)
    assert _frames(path) == {"TXXX:MOOD": [mood]}
    assert _player_moods(path) == [mood]


def test_changing_the_choice_moves_the_mood(env: BeetsEnv) -> None:
    path = env.make_track("one.mp3")
    env.add(path)
    env.run("emotion", "-w")
    mood = _only(env).mood
    assert _frames(path) == {"TMOO": [mood]}
    env.configure(id3_mood_frame="txxx")
    env.run("emotion", "-w")
    assert _frames(path) == {"TXXX:MOOD": [mood]}
    env.configure(id3_mood_frame="tmoo")
    env.run("emotion", "-w")
    assert _frames(path) == {"TMOO": [mood]}


# --------------------------------------------------------------------------- beets' own writes


@pytest.mark.parametrize("name", ["one.mp3", "one.wav"])
def test_beet_write_ends_with_one_frame(env: BeetsEnv, id3v23: bool, name: str) -> None:
    path = env.make_track(name)
    env.add(path)
    env.run("emotion", "-W")  # stored, file untouched
    mood = _only(env).mood
    _add_stale_frame(path, mood)
    env.run("write", "-f")
    assert _frames(path) == {_expected_frame(name, id3v23): [mood]}
    assert _player_moods(path) == [mood]


@pytest.mark.parametrize("name", ["one.mp3", "one.wav"])
def test_beet_modify_mood_ends_with_one_frame(env: BeetsEnv, id3v23: bool, name: str) -> None:
    path = env.make_track(name)
    env.add(path)
    env.run("emotion", "-w")
    _add_stale_frame(path, _only(env).mood)
    env.run("modify", "-y", "-w", "mood=sad")
    assert _only(env).mood == "sad"
    assert _frames(path) == {_expected_frame(name, id3v23): ["sad"]}
    assert _player_moods(path) == ["sad"]
    assert tags.read_tags(path)["mood"] == "sad"


def test_import_writes_one_frame(env: BeetsEnv, id3v23: bool) -> None:
    folder = env.incoming / "album"
    env.make_track("one.mp3", folder=folder)
    env.make_track("two.wav", folder=folder, track=2)
    env.run("import", "-A", str(folder))
    items = env.items()
    assert len(items) == 2
    for item in items:
        name = os.fsdecode(item.path)
        assert _frames(item.path) == {_expected_frame(name, id3v23): [item.mood]}
        assert _player_moods(item.path) == [item.mood]


# --------------------------------------------------------------------------- the option


def test_both_writes_both_frames(env: BeetsEnv) -> None:
    env.configure(id3_mood_frame="both")
    path = env.make_track("one.mp3")
    env.add(path)
    env.run("emotion", "-w")
    mood = _only(env).mood
    assert _frames(path) == {"TMOO": [mood], "TXXX:MOOD": [mood]}
    assert _player_moods(path) == [mood, mood]  # the price: TagLib reads two values
    assert not tags.tags_differ(path, tags.values_to_write(_only(env)), mood_frame="both")

    env.run("modify", "-y", "-w", "mood=calm")
    assert _frames(path) == {"TMOO": ["calm"], "TXXX:MOOD": ["calm"]}


def test_both_in_id3v23_is_txxx_alone(env: BeetsEnv) -> None:
    """ID3v2.3 has no TMOO frame (mutagen drops it when saving): every choice is TXXX."""
    beets.config["id3v23"] = True
    env.configure(id3_mood_frame="both")
    path = env.make_track("one.mp3")
    env.add(path)
    env.run("emotion", "-w")
    assert _frames(path) == {"TXXX:MOOD": [_only(env).mood]}


@pytest.mark.parametrize("choice", ["auto", "tmoo", "txxx", "both"])
@pytest.mark.parametrize("name", ["one.flac", "one.ogg", "one.m4a"])
def test_other_formats_keep_one_mood(env: BeetsEnv, name: str, choice: str) -> None:
    env.configure(id3_mood_frame=choice)
    path = env.make_track(name)
    env.add(path)
    env.run("emotion", "-w")
    mood = _only(env).mood
    assert _player_moods(path) == [mood]
    env.run("modify", "-y", "-w", "mood=sad")
    assert _player_moods(path) == ["sad"]


def test_a_bad_choice_is_one_line(env: BeetsEnv) -> None:
    path = env.make_track("one.mp3")
    env.add(path)
    env.configure(id3_mood_frame="tmo")
    message = "emotion: option id3_mood_frame is 'tmo'; use one of auto, tmoo, txxx, both"
    with pytest.raises(ui.UserError, match=f"^{message}$"):
        env.run("emotion", "-w")
    with pytest.raises(ui.UserError, match=f"^{message}$"):
        env.run("modify", "-y", "-w", "title=New")


def test_settings_read_the_choice(env: BeetsEnv) -> None:
    assert env.emotion.settings().id3_mood_frame == "auto"
    env.configure(id3_mood_frame="TXXX")
    assert env.emotion.settings().id3_mood_frame == "txxx"


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("frame", ["TMOO", "TXXX:MOOD"])
def test_either_frame_is_read(env: BeetsEnv, frame: str) -> None:
    path = env.make_track("one.mp3")
    id3 = mutagen.id3.ID3(os.fsdecode(path))
    if frame == "TMOO":
        id3.add(mutagen.id3.TMOO(encoding=3, text=["Dreamy"]))
    else:
        id3.add(mutagen.id3.TXXX(encoding=3, desc="MOOD", text=["Dreamy"]))
    id3.save(os.fsdecode(path))
    assert tags.read_tags(path) == {"mood": "Dreamy"}
    env.run("import", "-A", os.fsdecode(path))  # a mood set elsewhere is adopted and kept
    item = _only(env)
    assert item.mood == "Dreamy"
    assert _player_moods(item.path) == ["Dreamy"]


def test_write_tags_units(tmp_path: Path) -> None:
    from audio_factory import make_audio_file

    path = make_audio_file(tmp_path / "one.mp3", seconds=0.5)
    tags.write_tags(path, {"mood": "happy"})
    assert _frames(path) == {"TMOO": ["happy"]}
    tags.write_tags(path, {"mood": "happy"}, mood_frame="both")
    assert _frames(path) == {"TMOO": ["happy"], "TXXX:MOOD": ["happy"]}
    assert tags.tags_differ(path, {"mood": "happy"})
    assert not tags.tags_differ(path, {"mood": "happy"}, mood_frame="both")
    tags.write_tags(path, {"mood": "happy"}, id3v23=True)
    assert _frames(path) == {"TXXX:MOOD": ["happy"]}
    assert not tags.tags_differ(path, {"mood": "happy"}, id3v23=True)
    assert tags.tags_differ(path, {"mood": "happy"})  # v2.4 wants TMOO
    with pytest.raises(ValueError, match="id3_mood_frame"):
        tags.write_tags(path, {"mood": "happy"}, mood_frame="tmo")
    assert tags.mood_frames("auto", id3v23=False) == ("TMOO",)
    assert tags.mood_frames("tmoo", id3v23=True) == ("TXXX:MOOD",)


@NEEDS_TAGLIB
def test_the_mutagen_stand_in_matches_taglib(tmp_path: Path) -> None:
    """Where pytaglib is missing, _player_moods maps frames with mutagen: the same answer."""
    from audio_factory import make_audio_file

    for name in ("one.mp3", "two.wav", "three.flac", "four.m4a"):
        path = make_audio_file(tmp_path / name, seconds=0.5)
        for choice in ("auto", "txxx", "both"):
            tags.write_tags(path, {"mood": "angry"}, mood_frame=choice)
            assert _mutagen_moods(path) == _taglib_moods(path)
        if name.endswith((".mp3", ".wav")):
            _add_stale_frame(path, "angry")
            assert _mutagen_moods(path) == _taglib_moods(path) == ["angry", "angry"]
