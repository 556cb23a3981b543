"""Fault suite, lyrics: property-based tests of the LRC parser and of the whole local lyrics
chain (beets field, .lrc beside the file, embedded tags) on hostile input."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from audio_factory import make_audio_file
from beets.library import Item
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mutagen.id3 import ID3, USLT

from beetsplug.emotion.lyrics_sources import LyricsFinder, LyricsSettings
from lgfn_model.data.lyrics import (
    MAX_LINE_CHARS,
    decode_lyrics_bytes,
    looks_binary,
    parse_lrc,
    parse_lyrics,
)

stamp = st.tuples(st.integers(0, 120), st.integers(0, 59), st.integers(0, 99))
words = st.text(
    alphabet=st.characters(categories=("L", "N", "P", "Zs", "So")), min_size=1, max_size=40
).filter(lambda s: s.strip() and not set(s) & set("[]<>"))
# LRC-ish lines: good tags, broken tags, negative minutes, metadata, offsets, junk.
lrc_line = st.one_of(
    st.builds(lambda t, w: f"[{t[0]:02d}:{t[1]:02d}.{t[2]:02d}]{w}", stamp, words),
    st.builds(lambda t, w: f"[-{t[0]:02d}:{t[1]:02d}.{t[2]:02d}]{w}", stamp, words),
    st.builds(lambda n: f"[offset:{n}]", st.integers(-(10**9), 10**9)),
    st.builds(lambda k, v: f"[{k}:{v}]", st.sampled_from(["ar", "ti", "al", "by", "x"]), words),
    st.sampled_from(["[", "]", "[:]", "[0a:1b]x", "[99:99.999]y", "[00:01.5.3]z", "<00:01.00>"]),
    st.text(max_size=80),
)
lrc_text = st.lists(lrc_line, max_size=60).map("\n".join)


def _check(lyrics: object) -> None:
    """What the model may rely on, whatever came in."""
    lines = getattr(lyrics, "lines", ())
    for line in lines:
        assert line.text and line.text == line.text.strip() and "\n" not in line.text
        assert len(line.text) <= MAX_LINE_CHARS and line.text.isprintable()
        assert line.start is None or line.start >= 0.0
    starts = [line.start for line in lines]
    if lines and all(s is not None for s in starts):
        assert starts == sorted(starts)  # synced lyrics are in time order


@given(lrc_text, st.randoms(use_true_random=False))
def test_lrc_line_order_does_not_matter(text: str, rng: random.Random) -> None:
    """Out-of-order files give the same timed lines as sorted ones."""
    lines = text.splitlines()
    rng.shuffle(lines)
    first, second = parse_lrc(text), parse_lrc("\n".join(lines))
    _check(first)
    _check(second)
    if first.synced:
        offsets = [ln for ln in text.splitlines() if ln.strip().lower().startswith("[offset")]
        if len(offsets) <= 1:  # with several offset tags the last one read wins
            assert sorted((ln.start, ln.text) for ln in first.lines) == sorted(
                (ln.start, ln.text) for ln in second.lines
            )


@given(lrc_text, st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le-bom", "latin-1"]))
@example("0000000\x1f\x80\x80\x80\x80\x80\x80", "latin-1")  # binary in Latin-1 only
def test_any_common_encoding_reads_the_same(text: str, encoding: str) -> None:
    try:
        utf8 = text.encode("utf-8")
    except UnicodeEncodeError:
        return  # lone surrogates: no file holds them
    if looks_binary(utf8):
        assert decode_lyrics_bytes(utf8) == ""  # control bytes: not a text file
        return
    if encoding == "latin-1":
        try:
            data = text.encode("latin-1")
        except UnicodeEncodeError:
            return  # not representable: nobody saved it so
        if data != utf8 and _is_utf8(data):
            return  # Latin-1 bytes that are also valid UTF-8 read as UTF-8, by design
        if looks_binary(data):
            # The control bytes' share is of the file's own bytes: Latin-1 takes fewer than
            # UTF-8 for the same text, so near the 5 % line it is binary where UTF-8 is not.
            assert decode_lyrics_bytes(data) == ""
            return
    elif encoding == "utf-16-le-bom":
        data = b"\xff\xfe" + text.encode("utf-16-le")
    else:
        data = text.encode(encoding)
    got = parse_lyrics(decode_lyrics_bytes(data))
    _check(got)
    assert got == parse_lyrics(text.removeprefix("\ufeff"))


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@pytest.fixture(scope="module")
def track(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_audio_file(tmp_path_factory.mktemp("chain") / "song.mp3", seconds=0.5)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    field=st.one_of(st.none(), lrc_text, st.text(max_size=300)),
    sidecar=st.one_of(st.none(), st.binary(max_size=2000), lrc_text.map(str.encode)),
    embedded=st.one_of(st.none(), lrc_text, st.text(max_size=300)),
    sources=st.permutations(["beets", "lrc", "embedded"]),
)
def test_the_local_chain_never_raises(
    track: Path, field: str | None, sidecar: bytes | None, embedded: str | None, sources: list
) -> None:
    """Whatever the beets field, the .lrc beside the file and the embedded tag hold, the
    chain returns clean lines from the first source that has any, or none; never raises."""
    lrc = track.with_suffix(".lrc")
    lrc.unlink(missing_ok=True)
    if sidecar is not None:
        lrc.write_bytes(sidecar)
    tags = ID3()
    if embedded is not None:
        tags.add(USLT(encoding=3, lang="eng", desc="", text=embedded.replace("\x00", "")))
    tags.save(str(track))
    item = Item(path=str(track), title="Song", artist="Band", lyrics=field or "")

    outcome = LyricsFinder(LyricsSettings(sources=sources)).find(item)

    assert outcome.errors == []  # readable files: hostile content is not an error
    if outcome.lyrics is None:
        assert outcome.source == "none"
        return
    assert outcome.source in sources and outcome.lyrics.source == outcome.source
    _check(outcome.lyrics)
    earlier = sources[: sources.index(outcome.source)]
    for name in earlier:  # every earlier source really had nothing usable
        assert LyricsFinder(LyricsSettings(sources=[name])).find(item).lyrics is None


def test_binary_junk_is_not_lyrics(track: Path) -> None:
    """200 kB of random bytes as song.lrc: no lyrics from it; the next source is asked."""
    import numpy as np

    junk = np.random.default_rng(1).integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    track.with_suffix(".lrc").write_bytes(junk)
    ID3().save(str(track))
    item = Item(path=str(track), title="Song", artist="Band", lyrics="[00:01.00]from beets")
    outcome = LyricsFinder(LyricsSettings(sources=["lrc", "beets"])).find(item)
    assert outcome.source == "beets" and outcome.lyrics is not None
    assert outcome.lyrics.texts == ["from beets"]


def test_huge_lrc_file_is_read_whole(track: Path) -> None:
    """100,000 lines: parsed, sorted, and handed on (the model reads the first max_lines)."""
    lines = [
        f"[{i // 6000:02d}:{(i // 100) % 60:02d}.{i % 100:02d}]line {i}" for i in range(100_000)
    ]
    random.Random(0).shuffle(lines)
    track.with_suffix(".lrc").write_text("\n".join(lines))
    outcome = LyricsFinder(LyricsSettings(sources=["lrc"])).find(
        Item(path=str(track), title="Song", artist="Band")
    )
    assert outcome.lyrics is not None and len(outcome.lyrics.lines) == 100_000
    assert outcome.lyrics.texts[:3] == ["line 0", "line 1", "line 2"]
    _check(outcome.lyrics)
