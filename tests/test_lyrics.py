"""LRC and plain-lyrics parsing: examples of real-world mess, then properties."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lgfn_model.data.lyrics import (
    decode_lyrics_bytes,
    line_end_times,
    looks_like_lrc,
    parse_lrc,
    parse_lyrics,
)


def test_basic_lrc_with_metadata_and_fractions() -> None:
    text = "[ar:Someone]\n[ti:A Song]\n[00:01.5]one\n[00:02.25]two\n[00:03.125]three\n[01:04]four"
    lyrics = parse_lrc(text)
    assert lyrics.synced
    assert [line.start for line in lyrics.lines] == [1.5, 2.25, 3.125, 64.0]
    assert lyrics.texts == ["one", "two", "three", "four"]
    assert lyrics.metadata == {"ar": "Someone", "ti": "A Song"}


def test_several_timestamps_on_one_line_repeat_it_in_time_order() -> None:
    lyrics = parse_lrc("[00:10.00][01:30.50]chorus\n[00:20.00]verse")
    assert [(line.start, line.text) for line in lyrics.lines] == [
        (10.0, "chorus"),
        (20.0, "verse"),
        (90.5, "chorus"),
    ]


def test_offset_tag_shifts_times_and_clamps_at_zero() -> None:
    lyrics = parse_lrc("[offset:+500]\n[00:00.20]early\n[00:10.00]later")
    assert [line.start for line in lyrics.lines] == [0.0, 9.5]
    lyrics = parse_lrc("[offset:-1000]\n[00:10.00]later")
    assert lyrics.lines[0].start == 11.0


def test_word_stamps_empty_lines_and_garbage_are_dropped() -> None:
    text = "[00:01.00]<00:01.00>hel <00:01.50>lo\n[00:02.00]\n\x00\x01[zz:yy]junk\n[00:03.00]end"
    lyrics = parse_lrc(text)
    assert lyrics.texts == ["hel lo", "end"]


def test_plain_lyrics_have_no_times() -> None:
    lyrics = parse_lyrics("first line\n\n  second line  \n", source="tag")
    assert not lyrics.synced
    assert lyrics.texts == ["first line", "second line"]
    assert lyrics.source == "tag"


def test_blank_or_none_gives_no_lines() -> None:
    assert not parse_lyrics(None)
    assert not parse_lyrics("   \n ")


def test_encodings() -> None:
    assert decode_lyrics_bytes("café".encode("latin-1")) == "café"
    assert decode_lyrics_bytes("[00:01.00]niño".encode("utf-16")) == "[00:01.00]niño"
    assert decode_lyrics_bytes(b"\xef\xbb\xbfhello") == "hello"


def test_line_end_times_are_capped_and_monotonic() -> None:
    assert line_end_times([0.0, 2.0, 30.0], duration=33.0) == [2.0, 10.0, 33.0]


timestamp = st.tuples(st.integers(0, 99), st.integers(0, 59), st.integers(0, 999))
words = st.text(
    alphabet=st.characters(categories=("L", "N", "P", "Zs")), min_size=1, max_size=30
).filter(lambda s: s.strip() and "[" not in s and "<" not in s)


def _tag(minutes: int, seconds: int, millis: int) -> str:
    return f"[{minutes:02d}:{seconds:02d}.{millis:03d}]"


@given(st.lists(st.tuples(st.lists(timestamp, min_size=1, max_size=3), words), max_size=30))
def test_generated_lrc_round_trips(entries: list) -> None:
    text = "\n".join("".join(_tag(*t) for t in stamps) + text for stamps, text in entries)
    lyrics = parse_lrc(text)
    expected = sorted(
        (m * 60 + s + ms / 1000, " ".join(t.split()))
        for stamps, t in entries
        for m, s, ms in stamps
    )
    got = [(line.start, line.text) for line in lyrics.lines]
    assert [g[0] for g in got] == sorted(g[0] for g in got)
    assert len(got) == len(expected)
    for (got_time, got_text), (want_time, want_text) in zip(sorted(got), expected, strict=True):
        assert abs(got_time - want_time) < 1e-6
        assert got_text == want_text


@given(st.text(max_size=2000))
def test_any_text_parses_without_error(text: str) -> None:
    lyrics = parse_lyrics(text)
    for line in lyrics.lines:
        assert line.text and line.text == line.text.strip()
        assert line.start is None or line.start >= 0
    if not looks_like_lrc(text):
        assert not lyrics.synced


@given(st.binary(max_size=2000))
def test_any_bytes_decode_and_parse(data: bytes) -> None:
    parse_lyrics(decode_lyrics_bytes(data))
