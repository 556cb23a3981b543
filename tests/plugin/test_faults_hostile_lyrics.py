"""Fault suite, hostile lyrics (issue 22, items 3, 4, 9), through a real library and
``beet emotion``: an extreme ``[offset:]``, a model result that is NaN, a 16 GB ``.lrc``, too
long texts in every source, and random bytes in an ID3 USLT frame imported by beets.

Each costs at most one line for its track; the other tracks are tagged; nothing non-finite is
ever stored or written."""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path
from typing import Any

import mutagen
import numpy as np
import pytest
import requests_mock
from beets.library import Item
from mutagen.id3 import ID3, SYLT, USLT

from beetsplug.emotion import fields, tags
from beetsplug.emotion.lyrics_sources import LyricsFinder, LyricsSettings
from lgfn_model.data.lyrics import MAX_LYRICS_BYTES, MAX_LYRICS_CHARS

from .conftest import TEST_MODEL_VERSION, BeetsEnv

LRC = "[00:00.40]rain falls on the window\n[00:01.60]and I miss you\n"
EXTREME_OFFSET = "[offset:-99999999999999999999999999999]\n" + LRC


def _sha(path: Path | bytes) -> str:
    return hashlib.sha256(Path(os.fsdecode(path)).read_bytes()).hexdigest()


def _lines(out: str, prefix: str) -> list[str]:
    return [line.strip() for line in out.splitlines() if line.strip().startswith(prefix)]


def _finite_fields(item: Item) -> None:
    for name in fields.FLOAT_FIELDS:
        value = item.get(name, with_album=False)
        assert value is not None and math.isfinite(float(value)), (name, value)
    written = tags.read_tags(item.path)
    for name in fields.FLOAT_FIELDS:
        assert "nan" not in str(written.get(name, "")).lower(), (name, written.get(name))


def _random_bytes(n: int, seed: int = 7) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


# -- item 3: an extreme offset, a NaN result --------------------------------------------------


def test_an_extreme_offset_is_ignored_and_the_track_tagged(env: BeetsEnv) -> None:
    song = env.make_track("offset.flac", lrc=EXTREME_OFFSET)
    env.add(song)

    out = env.run("emotion", "-w")

    assert "tagged 1, skipped 0, failed 0" in out, out
    item = env.items()[0]
    assert item.emotion_lyrics == "lrc" and item.emotion_model == TEST_MODEL_VERSION
    assert item.mood in fields.MOODS
    _finite_fields(item)
    assert 0.0 < item.emotion_gate_lyrics < 1.0  # the lyrics were used, timed as written


@pytest.fixture
def nan_once(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The model's result for tracks titled ``poisoned`` has NaN in it (valence, one gate)."""
    from lgfn_model.runtime.predictor import Predictor

    real = Predictor._finish
    calls = {"poisoned": 0}

    def finish(self: Predictor, track: Any) -> Any:
        prediction = real(self, track)
        if Path(track.item.audio).stem == "poisoned":
            calls["poisoned"] += 1
            prediction.valence = float("nan")
            prediction.gate_lyrics = float("inf")
        return prediction

    monkeypatch.setattr(Predictor, "_finish", finish)
    return calls


def test_a_nan_result_is_one_line_and_leaves_the_item_untouched(
    env: BeetsEnv, nan_once: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    poisoned = env.make_track("poisoned.mp3", title="Poisoned", lrc=LRC)
    good = env.make_track("good.flac", title="Good", lrc=LRC)
    env.add(poisoned, good)
    before = _sha(poisoned)

    out = env.run_failing("emotion", "-w")

    assert nan_once["poisoned"] == 1
    assert "tagged 1, skipped 0, failed 1" in out, out
    assert _lines(out, "failed:") == [
        f"failed: {poisoned}: the model gave a non-finite result (valence nan, gate_lyrics inf)"
    ]
    item = env.items("title:Poisoned")[0]
    for name in (*fields.TRACK_FIELDS, fields.MOOD):
        assert item.get(name, with_album=False) is None, name
    assert not fields.is_current(item, TEST_MODEL_VERSION)
    assert _sha(poisoned) == before  # the file too
    _finite_fields(env.items("title:Good")[0])

    monkeypatch.undo()  # the model is healthy again: the next run does the poisoned track
    out = env.run("emotion", "-w")
    assert "tagged 1, skipped 1 (already analysed by lgfn-test-tiny), failed 0" in out, out
    _finite_fields(env.items("title:Poisoned")[0])


def test_a_nan_result_is_refused_in_pretend_mode_too(
    env: BeetsEnv, nan_once: dict[str, int]
) -> None:
    env.add(env.make_track("poisoned.flac", title="Poisoned"))
    out = env.run_failing("emotion", "-p")
    assert "would tag 0, skipped 0, failed 1" in out, out
    assert len(_lines(out, "failed:")) == 1 and "mood" not in out  # no result line printed


# -- item 4: lyrics too large -----------------------------------------------------------------


def _sparse_lrc(path: Path, size: int) -> Path:
    try:
        with open(path, "wb") as handle:
            handle.truncate(size)
    except OSError as error:
        pytest.skip(f"no {size} byte sparse file here: {error}")
    if os.stat(path).st_blocks * 512 > 2**20:
        path.unlink()
        pytest.skip(f"{path.parent} does not keep files sparse")
    return path


@pytest.mark.parametrize(
    ("size", "shown"),
    [(16 * 2**30, "16.0 GB"), (5 * 2**20, "5.0 MB")],
    ids=["16 GB sparse", "5 MB real"],
)
def test_a_huge_lrc_costs_one_line_and_the_run_goes_on(
    env: BeetsEnv, size: int, shown: str
) -> None:
    songs = [env.make_track(f"{n}.flac", title=f"Song {n}", track=n, lrc=LRC) for n in range(5)]
    huge = songs[2].with_suffix(".lrc")
    if size > 64 * 2**20:
        huge.unlink()
        _sparse_lrc(huge, size)
    else:
        line = b"[00:01.00]la la la la\n"
        huge.write_bytes((line * (size // len(line) + 1))[:size])
    env.add(*songs)

    out = env.run("emotion", "-w")

    assert "tagged 5, skipped 0, failed 0" in out, out
    assert _lines(out, "lyrics lookup:") == [
        f"lyrics lookup: {huge}: lyrics file too large ({shown}, limit 4 MB); not used"
    ]
    by_title = {item.title: item for item in env.items()}
    assert by_title["Song 2"].emotion_lyrics == "none"  # no other source had any
    assert by_title["Song 2"].emotion_gate_lyrics == 0.0
    assert all(by_title[f"Song {n}"].emotion_lyrics == "lrc" for n in (0, 1, 3, 4))


def test_the_next_source_is_asked_after_a_huge_lrc(env: BeetsEnv) -> None:
    song = env.make_track("song.mp3")
    _sparse_lrc(song.with_suffix(".lrc"), 16 * 2**30)
    id3 = ID3(str(song))
    id3.add(USLT(encoding=3, lang="eng", desc="", text="embedded words\nsung softly"))
    id3.save(str(song))
    env.add(song)
    env.restart(lyrics_sources=["lrc", "embedded"])  # beets copied the USLT text in: skip it
    out = env.run("emotion")
    assert "lyrics file too large (16.0 GB, limit 4 MB); not used" in out
    assert env.items()[0].emotion_lyrics == "embedded"


def _item(path: Path, **values: Any) -> Item:
    return Item(path=str(path), title="Rain Song", artist="The Band", **values)


def _finder(*sources: str, **settings: Any) -> LyricsFinder:
    return LyricsFinder(LyricsSettings(sources=sources, **settings))


TOO_LONG = "la la la\n" * (MAX_LYRICS_CHARS // 9 + 1)


def test_a_too_long_beets_field_is_one_line(env: BeetsEnv) -> None:
    song = env.make_track("song.mp3", lrc=LRC)
    found = _finder("beets", "lrc").find(_item(song, lyrics=TOO_LONG))
    assert found.source == "lrc"
    assert found.errors == [
        f"{song}: beets lyrics field: lyrics too long ({len(TOO_LONG):,} characters, "
        f"limit {MAX_LYRICS_CHARS:,}); not used"
    ]


@pytest.mark.parametrize("frame", ["USLT", "SYLT"])
def test_a_too_long_embedded_frame_is_one_line(env: BeetsEnv, frame: str) -> None:
    song = env.make_track("song.mp3")
    id3 = ID3(str(song))
    if frame == "USLT":
        id3.add(USLT(encoding=3, lang="eng", desc="", text=TOO_LONG))
    else:
        # Few long entries: mutagen itself takes minutes over a million short ones.
        entries = [("la " * 20_000, n * 1000) for n in range(MAX_LYRICS_CHARS // 60_000 + 1)]
        id3.add(SYLT(encoding=3, lang="eng", format=2, type=1, desc="", text=entries))
    id3.save(str(song))
    found = _finder("embedded", "beets").find(_item(song, lyrics="from beets"))
    assert found.source == "beets"
    assert len(found.errors) == 1
    assert found.errors[0].startswith(f"{song}: ID3 {frame}: lyrics too long (")
    assert found.errors[0].endswith(f"limit {MAX_LYRICS_CHARS:,}); not used")


LRCLIB_SEARCH = "https://lrclib.net/api/search"


def _lrclib(mock: requests_mock.Mocker, synced: str) -> None:
    mock.get(LRCLIB_SEARCH, json=[{"id": 7, "artistName": "The Band", "trackName": "Rain Song"}])
    mock.get("https://lrclib.net/api/get/7", json={"syncedLyrics": synced, "plainLyrics": None})


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("[00:01.00]" + "la " * (MAX_LYRICS_CHARS // 3 + 1), "answer too long ("),
        (_random_bytes(3000).replace(b"\0", b"").decode("latin-1"), "the answer is not text"),
    ],
    ids=["too long", "not text"],
)
def test_a_network_answer_too_long_or_not_text_is_an_error_not_a_miss(
    env: BeetsEnv, requests_mock: requests_mock.Mocker, answer: str, reason: str
) -> None:
    song = env.make_track("song.mp3")
    _lrclib(requests_mock, answer)
    found = _finder("syncedlyrics", providers=["lrclib"]).find(_item(song))
    assert found.lyrics is None and found.fetched is None
    assert found.misses == set()  # not remembered as "not found": asked again next run
    assert len(found.errors) == 1 and reason in found.errors[0], found.errors
    assert found.errors[0].startswith(f"{song}: syncedlyrics:lrclib: ")


def test_a_network_answer_in_mojibake_is_repaired(
    env: BeetsEnv, requests_mock: requests_mock.Mocker
) -> None:
    song = env.make_track("song.mp3")
    _lrclib(requests_mock, "[00:01.00]Привет, мир".encode().decode("latin-1"))
    found = _finder("syncedlyrics", providers=["lrclib"]).find(_item(song))
    assert found.lyrics is not None and found.lyrics.texts == ["Привет, мир"]
    assert found.fetched is not None and found.fetched.text == "[00:01.00]Привет, мир"


# -- item 9: random bytes that beets copied into ``lyrics`` ---------------------------------


def _junk_uslt(path: Path) -> str:
    """A real ID3 USLT frame whose text is random bytes (Latin-1: every byte is a char)."""
    text = _random_bytes(3000).replace(b"\0", b"").decode("latin-1")
    id3 = ID3(str(path))
    id3.add(USLT(encoding=0, lang="eng", desc="", text=text))
    id3.save(str(path))
    return text


def test_random_bytes_in_a_uslt_frame_imported_by_beets_are_not_lyrics(env: BeetsEnv) -> None:
    folder = env.incoming / "album"
    junk = env.make_track("junk.mp3", title="Junk", folder=folder)
    _junk_uslt(junk)
    env.make_track("clean.mp3", title="Clean", track=2, folder=folder, lrc=LRC)
    env.configure(auto=False)
    env.restart()

    env.run("import", "-A", str(folder))
    item = env.items("title:Junk")[0]
    assert len(item.lyrics) > 1000  # beets copied the frame into the lyrics field
    assert any(key.startswith("USLT") for key in mutagen.File(os.fsdecode(item.path)).tags)

    out = env.run("emotion", "-w")

    assert "tagged 2, skipped 0, failed 0" in out, out
    item = env.items("title:Junk")[0]
    assert item.emotion_lyrics not in ("beets", "embedded")
    assert item.emotion_lyrics == "none"
    assert item.emotion_gate_lyrics == 0.0
    assert env.items("title:Clean")[0].emotion_lyrics == "none"  # not imported with it
    assert "lyrics lookup:" not in out  # not text is "no lyrics", not an error


@pytest.mark.parametrize(
    "text",
    [
        _random_bytes(2000).decode("utf-8", errors="replace"),
        _random_bytes(2000).decode("utf-16-le", errors="replace"),
        "\ue000\ue001\ue002 " * 50,
        "!!! ??? ... ### 123 " * 20,
    ],
    ids=["UTF-8 replaced", "UTF-16", "private use", "no letters"],
)
def test_no_source_takes_text_that_is_not_text(env: BeetsEnv, text: str) -> None:
    song = env.make_track("song.mp3")
    song.with_suffix(".lrc").write_text(text, encoding="utf-8", errors="surrogatepass")
    id3 = ID3(str(song))
    id3.add(USLT(encoding=3, lang="eng", desc="", text=text))
    id3.add(SYLT(encoding=3, lang="eng", format=2, type=1, desc="", text=[(text, 1000)]))
    id3.save(str(song))
    item = _item(song, lyrics=text)
    for source in ("beets", "lrc", "embedded"):
        found = _finder(source).find(item)
        assert found.lyrics is None and found.errors == [], source
    found = _finder("beets", "lrc", "embedded").find(item)
    assert found.lyrics is None and found.source == "none"


def test_real_lyrics_still_pass_every_source(env: BeetsEnv) -> None:
    text = "上を向いて歩こう\nأنا لك على طول\nМиллион алых роз\nÀ bientôt, ça va ?"
    song = env.make_track("song.mp3")
    song.with_suffix(".lrc").write_text(text, encoding="utf-8")
    id3 = ID3(str(song))
    id3.add(USLT(encoding=3, lang="eng", desc="", text=text))
    id3.save(str(song))
    for source in ("beets", "lrc", "embedded"):
        found = _finder(source).find(_item(song, lyrics=text))
        assert found.lyrics is not None and found.lyrics.texts == text.splitlines(), source


def test_mojibake_in_the_beets_field_is_repaired(env: BeetsEnv) -> None:
    song = env.make_track("song.mp3")
    garbled = "[00:01.00]Café à bientôt\n[00:02.00]Привет".encode().decode("cp1252")
    found = _finder("beets").find(_item(song, lyrics=garbled))
    assert found.lyrics is not None and found.lyrics.texts == ["Café à bientôt", "Привет"]


def test_limits_are_documented_constants() -> None:
    assert MAX_LYRICS_BYTES == 4 * 2**20 and MAX_LYRICS_CHARS == MAX_LYRICS_BYTES
