"""``beet emotion --learn``: a real library, hand-set moods, re-tagging from stored embeddings.

The model is the tiny random-weight checkpoint: it calls every track happy, so the labels
here are a rule it does not know (``sad`` for the tracks it finds saddest, ``relaxed`` for the
rest): the shipped head gets none of them right and a learned head can, which is what makes
``--learn`` adapt. "Without decoding" is checked by making the predictor fail if it is asked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mutagen
import numpy as np
import pytest
import soundfile
from beets.ui import UserError
from mediafile import MediaFile

from beetsplug.emotion import fields
from beetsplug.emotion.personal import head_folder
from lgfn_model.runtime.personal_head import HEAD_INFO, HEAD_WEIGHTS, load_personal_head

from .conftest import BeetsEnv

TRACKS = 14
LABELLED = 10


def _tone(path: Path, index: int) -> Path:
    """Tracks that differ in pitch, tremolo and noise, so their embeddings differ."""
    rate = 16000
    t = np.arange(3 * rate) / rate
    rng = np.random.default_rng(index)
    pitch = 110 * 2 ** (index / 3)
    tremolo = (1 + np.sin(2 * np.pi * (index % 4 + 1) * t)) / 2
    audio = 0.5 * np.sin(2 * np.pi * pitch * t) * tremolo
    audio += (index % 5) * 0.05 * rng.standard_normal(t.size)
    soundfile.write(path, audio.astype("float32"), rate)
    return path


@pytest.fixture
def library(env: BeetsEnv) -> list[Any]:
    paths = [_tone(env.incoming / f"track{i:02}.flac", i) for i in range(TRACKS)]
    items = env.add(*paths)
    for index, item in enumerate(items):
        item.title = f"track {index}"
        item.store()
    env.run("emotion", "-w")
    return env.items()


def _label(env: BeetsEnv, items: list[Any]) -> dict[int, str]:
    """Hand-set moods on the first LABELLED tracks; item id -> the mood set."""
    sad = [float(item[fields.PROBABILITY_FIELDS["sad"]]) for item in items[:LABELLED]]
    middle = float(np.median(sad))
    chosen: dict[int, str] = {}
    for item, p in zip(items[:LABELLED], sad, strict=True):
        # A synonym for half of them: the table maps it.
        mood = ("melancholic" if p > middle else "chill") if item.id % 2 else None
        mood = mood or ("sad" if p > middle else "relaxed")
        env.run("modify", "-y", f"id:{item.id}", f"mood={mood}")
        chosen[item.id] = mood
    return chosen


def _no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    from lgfn_model.runtime.predictor import Predictor

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the predictor was asked to decode audio")

    monkeypatch.setattr(Predictor, "predict_many", refuse)


def test_learn_re_tags_from_embeddings_and_reset_restores(
    env: BeetsEnv, library: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = {item.id: dict(item) for item in library}
    base = shipped[library[0].id][fields.MODEL]
    chosen = _label(env, library)
    extra = library[LABELLED]
    env.run("modify", "-y", f"id:{extra.id}", "mood=epic")  # no such mood: listed, skipped

    _no_decoding(monkeypatch)
    out = env.run("emotion", "--learn", "-w")
    assert f"learning from {LABELLED} mood(s) set by hand" in out
    assert "skipped 1 track(s) whose mood is none of the four: 'epic' (1)" in out
    assert "cross-validated" in out and "adapted" in out
    assert f"{TRACKS} of them re-tagged from stored embeddings (no audio decoded)" in out

    personal = load_personal_head(head_folder())
    assert personal is not None and personal.base == base
    version = personal.version
    assert version.startswith(base + "+you-") and len(version) == len(base) + 9
    # The penalty was measured over every track's stored embedding, not the labelled ones only.
    assert personal.info["penalty_measured_over_tracks"] == TRACKS
    after = {item.id: item for item in env.items()}
    for item_id, item in after.items():
        assert item[fields.MODEL] == version
        # Valence, arousal and the gates are the model's: not adapted.
        for name in (fields.VALENCE, fields.AROUSAL, fields.GATE_AUDIO, fields.GATE_LYRICS):
            assert item[name] == shipped[item_id][name]
        embedding = fields.decode_embedding(item[fields.EMBEDDING])
        probabilities = personal.probabilities(embedding)
        for mood, column in fields.PROBABILITY_FIELDS.items():
            assert item[column] == pytest.approx(probabilities[mood], abs=1e-4)
        if item_id in chosen:  # hand-set moods stay as set, and stay labels
            assert item[fields.MOOD] == chosen[item_id]
            assert item[fields.MOOD_BY_HAND]
        elif item_id == extra.id:
            assert item[fields.MOOD] == "epic"
        else:
            assert item[fields.MOOD] == max(probabilities, key=probabilities.__getitem__)
    # The files carry the new version (written without decoding), never the embedding.
    tags = mutagen.File(after[library[-1].id].path)
    assert [version] == tags["EMOTION_MODEL"]
    # The learned head fits the labels better than the shipped one (which says happy).
    meant = {"melancholic": "sad", "chill": "relaxed"}
    right = 0
    for item_id, word in chosen.items():
        found = personal.probabilities(fields.decode_embedding(after[item_id][fields.EMBEDDING]))
        right += max(found, key=found.__getitem__) == meant.get(word, word)
    assert right >= LABELLED // 2

    # Later runs use the learned head: nothing to do for the tracks tagged by it.
    assert f"tagged 0, skipped {TRACKS} (already analysed by {version})" in env.run("emotion")

    out = env.run("emotion", "--learn", "--reset", "-w")
    assert f"removed {version}; back to {base}" in out
    assert not (head_folder() / HEAD_INFO).exists()
    assert not (head_folder() / HEAD_WEIGHTS).exists()
    for item in env.items():
        before = shipped[item.id]
        assert item[fields.MODEL] == base
        for column in fields.PROBABILITY_FIELDS.values():  # float16 embeddings: 3 digits
            assert item[column] == pytest.approx(before[column], abs=0.01)
        if item.id in chosen:
            assert item[fields.MOOD] == chosen[item.id]
        elif item.id != extra.id:
            assert item[fields.MOOD] == before[fields.MOOD]


def test_new_tracks_are_analysed_through_the_learned_head(
    env: BeetsEnv, library: list[Any]
) -> None:
    _label(env, library)
    env.run("emotion", "--learn", "-W")
    personal = load_personal_head(head_folder())
    assert personal is not None
    new = env.add(_tone(env.incoming / "new.flac", 40))[0]
    out = env.run("emotion", "-W", f"id:{new.id}")
    assert "tagged 1" in out and "re-tagged" not in out
    new.load()
    assert new[fields.MODEL] == personal.version
    probabilities = personal.probabilities(fields.decode_embedding(new[fields.EMBEDDING]))
    for mood, column in fields.PROBABILITY_FIELDS.items():
        assert new[column] == pytest.approx(probabilities[mood], abs=1e-3)


def test_pretend_shows_the_moves_and_changes_nothing(env: BeetsEnv, library: list[Any]) -> None:
    _label(env, library)
    before = {item.id: dict(item) for item in env.items()}
    out = env.run("emotion", "--learn", "-p")
    assert "mood(s) the plugin set change" in out or "no mood the plugin set changes" in out
    assert "pretend: nothing saved, nothing re-tagged" in out
    assert load_personal_head(head_folder()) is None
    assert {item.id: dict(item) for item in env.items()} == before


def test_a_labelled_track_without_an_embedding_is_analysed_first(
    env: BeetsEnv, library: list[Any]
) -> None:
    chosen = _label(env, library)
    old = env.items()[0]  # as analysed by a release that stored no embedding
    del old[fields.EMBEDDING]
    old.store()
    out = env.run("emotion", "--learn", "-p")  # -p: analyses nothing
    assert "1 labelled track(s) have no stored embedding" in out
    old.load()
    assert fields.EMBEDDING not in old
    out = env.run("emotion", "--learn", "-W")
    assert "analysing 1 labelled track(s) with no stored embedding" in out
    old.load()
    assert fields.decode_embedding(old[fields.EMBEDDING]) is not None
    assert old[fields.MOOD] == chosen[old.id]


def test_without_labels_it_says_how_to_set_them(env: BeetsEnv, library: list[Any]) -> None:
    with pytest.raises(UserError, match="no mood set by hand in the tracks matched"):
        env.run("emotion", "--learn")
    with pytest.raises(UserError, match="--reset goes with --learn"):
        env.run("emotion", "--reset")
    assert "nothing learned to reset" in env.run("emotion", "--learn", "--reset")


def test_one_mood_only_is_refused(env: BeetsEnv, library: list[Any]) -> None:
    for item in library[:4]:
        env.run("modify", "-y", f"id:{item.id}", "mood=sad")
    with pytest.raises(UserError, match="every label is the same mood"):
        env.run("emotion", "--learn")
    assert load_personal_head(head_folder()) is None


def test_a_damaged_head_stops_the_run_with_one_line(env: BeetsEnv, library: list[Any]) -> None:
    _label(env, library)
    env.run("emotion", "--learn", "-W")
    (head_folder() / HEAD_WEIGHTS).write_bytes(b"not a head")
    with pytest.raises(UserError, match=r"personal-head.safetensors: does not match"):
        env.run("emotion")


def test_a_head_of_another_model_is_not_used(
    env: BeetsEnv, library: list[Any], other_checkpoint: Path
) -> None:
    _label(env, library)
    env.run("emotion", "--learn", "-W")
    personal = load_personal_head(head_folder())
    assert personal is not None
    env.restart(checkpoint=str(other_checkpoint))
    out = env.run("emotion", "-W", f"id:{library[0].id}")
    assert f"fitted to {personal.base}, not to the model in use (lgfn-test-v2)" in out
    assert env.items()[0][fields.MODEL] == "lgfn-test-v2"


def test_imports_use_the_learned_head(env: BeetsEnv, library: list[Any]) -> None:
    _label(env, library)
    env.run("emotion", "--learn", "-W")
    personal = load_personal_head(head_folder())
    assert personal is not None
    folder = env.incoming / "later"
    folder.mkdir()
    media = MediaFile(str(_tone(folder / "imported.flac", 41)))
    media.update({"title": "imported", "artist": "Someone", "album": "Later"})
    media.save()
    env.run("import", "-A", str(folder))
    (imported,) = env.items("title:imported")
    assert imported[fields.MODEL] == personal.version
    assert mutagen.File(imported.path)["EMOTION_MODEL"] == [personal.version]


def test_the_query_chooses_the_labels(env: BeetsEnv, library: list[Any]) -> None:
    chosen = _label(env, library)
    some = sorted(chosen)[:6]
    query = "id::^(" + "|".join(map(str, some)) + ")$"
    out = env.run("emotion", "--learn", "-p", query)
    assert "learning from 6 mood(s) set by hand" in out
    assert load_personal_head(head_folder()) is None  # -p: nothing saved
