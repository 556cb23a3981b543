"""Pure helpers: field values, album aggregation, tags on every format, playlists, options."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import mutagen
import pytest
from audio_factory import FORMATS, make_format_file
from beets.library import Item

from beetsplug.emotion import fields, tags
from beetsplug.emotion.cli import build_command
from beetsplug.emotion.failures import Failure
from beetsplug.emotion.parallel import ordered_map
from beetsplug.emotion.playlists import build_playlists, render
from beetsplug.emotion.progress import Progress, Summary

VALUES = {
    "mood": "sad",
    "emotion_happy": 0.1234,
    "emotion_angry": 0.0,
    "emotion_sad": 0.7,
    "emotion_relaxed": 0.1766,
    "emotion_valence": -0.3121,
    "emotion_arousal": -0.25,
    "emotion_gate_audio": 0.6,
    "emotion_gate_lyrics": 0.4,
    "emotion_lyrics": "syncedlyrics:lrclib",
    "emotion_model": "lgfn-x",
}


def _prediction(**p: float) -> SimpleNamespace:
    probabilities = {"happy": 0.1, "angry": 0.2, "sad": 0.6, "relaxed": 0.1, **p}
    return SimpleNamespace(
        mood=max(probabilities, key=probabilities.__getitem__),
        probabilities=probabilities,
        valence=-0.123456,
        arousal=0.5,
        gate_audio=0.75,
        gate_lyrics=0.25,
    )


def test_prediction_fields() -> None:
    values = fields.prediction_fields(_prediction(), "lrc", "v1")
    assert values["mood"] == "sad"
    assert values["emotion_sad"] == 0.6 and values["emotion_valence"] == -0.1235
    assert values["emotion_lyrics"] == "lrc" and values["emotion_model"] == "v1"
    assert set(values) == set(fields.TRACK_FIELDS)  # no embedding in this prediction


def test_the_embedding_is_stored_in_the_database_only_and_reads_back() -> None:
    prediction = _prediction()
    prediction.embedding = [0.5, -1.25, 3.0e-3, 7.0] * 32
    values = fields.prediction_fields(prediction, "lrc", "v1")
    assert set(values) == {*fields.TRACK_FIELDS, fields.EMBEDDING}
    assert fields.EMBEDDING not in tags.FILE_FIELDS
    text = values[fields.EMBEDDING]
    assert text.startswith("f16:") and len(text) == 4 + 344
    back = fields.decode_embedding(text)
    assert back is not None and len(back) == 128
    assert all(
        abs(a - b) <= 2e-3 * max(1.0, abs(b))
        for a, b in zip(back, prediction.embedding, strict=True)
    )
    for foreign in (None, "", "f16:", "f16:not base64!", "relaxing", 3.5, "f16:AAE"):
        assert fields.decode_embedding(foreign) is None
    prediction.embedding = [float("nan")] * 4
    with pytest.raises(fields.NonFinitePrediction, match="embedding"):
        fields.prediction_fields(prediction, "lrc", "v1")


def test_user_mood_detection() -> None:
    item = Item(
        mood="sad", emotion_happy=0.1, emotion_angry=0.1, emotion_sad=0.7, emotion_relaxed=0.1
    )
    assert not fields.has_user_mood(item)
    item.mood = "melancholic"
    assert fields.has_user_mood(item)
    assert fields.has_user_mood(Item(mood="happy"))  # never analysed: someone else set it
    assert not fields.has_user_mood(Item())


def test_album_aggregate_is_length_weighted() -> None:
    short = {
        "length": 60.0,
        **{f"emotion_{m}": p for m, p in zip(fields.MOODS, (0.7, 0.1, 0.1, 0.1), strict=True)},
    }
    long = {
        "length": 180.0,
        **{f"emotion_{m}": p for m, p in zip(fields.MOODS, (0.1, 0.1, 0.1, 0.7), strict=True)},
    }
    for row, valence in ((short, 0.8), (long, -0.4)):
        row.update(emotion_valence=valence, emotion_arousal=0.0, emotion_model="v1")
    values = fields.aggregate_album([short, long, {"length": 100.0}])
    assert values is not None
    assert values["album_mood"] == "relaxed"
    assert values["album_emotion_valence"] == pytest.approx((0.8 * 60 - 0.4 * 180) / 240, abs=1e-4)
    assert values["album_emotion_model"] == "v1"
    assert fields.aggregate_album([{"length": 1.0}]) is None


def test_types_are_shared_objects() -> None:
    from beets.dbcore import types

    assert fields.ITEM_TYPES["mood"] is types.STRING
    assert all(fields.ITEM_TYPES[f] is fields.FLOAT for f in fields.FLOAT_FIELDS)
    assert not any(name.startswith("mood_") for name in fields.ITEM_TYPES)  # acousticbrainz's


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_tags_round_trip_every_format(tmp_path: Path, name: str) -> None:
    path = make_format_file(tmp_path, name, seconds=0.3)
    tags.write_tags(path, VALUES)
    back = tags.read_tags(path)
    assert set(back) == set(VALUES)
    for key, value in VALUES.items():
        assert back[key] == (pytest.approx(value, abs=1e-4) if isinstance(value, float) else value)
    assert not tags.tags_differ(path, VALUES)
    assert tags.tags_differ(path, {**VALUES, "emotion_sad": 0.5})
    assert mutagen.File(path).tags is not None


def test_writing_our_tags_keeps_the_others(tmp_path: Path) -> None:
    path = make_format_file(tmp_path, "flac", seconds=0.3)
    media = mutagen.File(path)
    media["TITLE"] = "Keep Me"
    media["MOOD_CUSTOM"] = "other"
    media.save()
    tags.write_tags(path, VALUES)
    media = mutagen.File(path)
    assert media["TITLE"] == ["Keep Me"] and media["MOOD_CUSTOM"] == ["other"]


def test_tag_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(tags.TagError) as caught:
        tags.read_tags(bad)
    assert "bad.mp3" in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(tags.TagError, match="missing.flac"):
        tags.write_tags(tmp_path / "missing.flac", VALUES)


def test_register_media_fields_twice_is_harmless() -> None:
    tags.register_media_fields()
    tags.register_media_fields()


def test_playlists_order_and_render(tmp_path: Path) -> None:
    def item(title: str, mood: str, p: float | None) -> Item:
        values = {"emotion_happy": p} if p is not None else {}
        return Item(
            path=str(tmp_path / f"{title}.mp3"),
            title=title,
            artist="A",
            mood=mood,
            length=61.4,
            **values,
        )

    items = [
        item("low", "happy", 0.4),
        item("high", "happy", 0.9),
        item("none", "happy", None),
        item("x", "calm", 0.9),
    ]
    lists = {p.mood: p for p in build_playlists(items, tmp_path)}
    assert set(lists) == set(fields.MOODS)
    happy = render(lists["happy"]).splitlines()
    assert happy[0] == "#EXTM3U"
    assert happy[1:3] == ["#EXTINF:61,A - high", str(tmp_path / "high.mp3")]
    assert [line for line in happy if not line.startswith("#")][-1].endswith("none.mp3")
    assert lists["angry"].entries == []
    relative = {p.mood: p for p in build_playlists(items, tmp_path / "lists", relative=True)}
    assert "../high.mp3" in render(relative["happy"])


@pytest.mark.parametrize(
    ("argv", "playlist", "rest"),
    [
        (["--playlist"], "", []),
        (["--playlist", "mood:sad"], "", ["mood:sad"]),
        (["--playlist", "beatles"], "", ["beatles"]),
        (["--playlist", "./lists", "beatles"], "./lists", ["beatles"]),
        (["--playlist=lists", "beatles"], "lists", ["beatles"]),
        (["-a", "artist:x"], None, ["artist:x"]),
    ],
)
def test_playlist_option_takes_an_optional_directory(
    argv: list[str], playlist: str | None, rest: list[str]
) -> None:
    import beets.ui  # noqa: F401  (beets makes callback options typed on import)

    opts, args = build_command().parse_args(argv)
    assert opts.playlist == playlist and args == rest


def test_progress_text() -> None:
    progress = Progress(10, enabled=False)
    progress.started -= 10.0
    progress.advance(5)
    assert progress.text().startswith("emotion: 5/10 tracks, 0.50 tracks/s, 0:10 left")


def test_summary_lines() -> None:
    summary = Summary(version="v1", tagged=2, skipped=1)
    summary.lyrics.update({"lrc": 1, "none": 1})
    summary.failed.append(Failure("x.mp3", "analyse", "not an audio file"))
    lines = summary.lines()
    assert lines[0] == "emotion: tagged 2, skipped 1 (already analysed by v1), failed 1"
    assert "  lyrics by source: lrc 1, none 1" in lines
    assert "  failed: x.mp3: not an audio file" in lines


def test_ordered_map_keeps_order_and_bounds_work() -> None:
    running = 0
    peak = 0
    lock = threading.Lock()

    def slow(n: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        threading.Event().wait(0.01 * (n % 3))
        with lock:
            running -= 1
        return n * n

    assert list(ordered_map(slow, range(20), threads=3)) == [n * n for n in range(20)]
    assert peak <= 3
    assert list(ordered_map(slow, range(5), threads=0)) == [0, 1, 4, 9, 16]
