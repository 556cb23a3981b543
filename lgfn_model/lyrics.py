"""Lyrics as the model sees them: lines of text, each with an optional start time.

Torch-free on purpose: the beets plugin parses lyrics without loading the model.

LRC is parsed leniently because real files are messy: several timestamps on one line
(``[00:12.00][01:30.50]chorus``), ``[mm:ss]``, ``[mm:ss.x]``, ``[mm:ss.xxx]``, ``[mm:ss:xx]``,
an ``[offset:+/-ms]`` tag, metadata tags (``[ar:...]``), word-level ``<mm:ss.xx>`` stamps and
garbage. Anything that is not understood is treated as plain text or dropped, never raised.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

# One leading time tag. Minutes may exceed 59 (long mixes); fractions may be 1-3 digits.
_TIME_TAG = re.compile(r"\[\s*(\d{1,4})\s*:\s*(\d{1,2})(?:\s*[.:]\s*(\d{1,3}))?\s*\]")
_META_TAG = re.compile(r"^\[\s*([A-Za-z#]+)\s*:(.*)\]\s*$")
_WORD_STAMP = re.compile(r"<\s*\d{1,4}\s*:\s*\d{1,2}(?:\s*[.:]\s*\d{1,3})?\s*>")
_OFFSET_TAG = re.compile(r"^\[\s*offset\s*:\s*([+-]?\d+)\s*\]\s*$", re.IGNORECASE)
# Lines this long are not lyrics (a binary blob or a whole page pasted into one line).
MAX_LINE_CHARS = 500


@dataclass(frozen=True)
class LyricLine:
    """One line of lyrics; ``start`` is in seconds from the start of the track, or None."""

    text: str
    start: float | None = None


@dataclass(frozen=True)
class Lyrics:
    """Lines in singing order. ``synced`` is true when every line has a start time."""

    lines: tuple[LyricLine, ...]
    source: str = "unknown"
    metadata: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def synced(self) -> bool:
        return bool(self.lines) and all(line.start is not None for line in self.lines)

    @property
    def texts(self) -> list[str]:
        return [line.text for line in self.lines]

    def __bool__(self) -> bool:
        return bool(self.lines)

    def with_source(self, source: str) -> Lyrics:
        return Lyrics(self.lines, source, dict(self.metadata))


def _clean(text: str) -> str:
    text = _WORD_STAMP.sub("", text)
    # Control characters (binary junk, stray NULs) carry no meaning for the encoder.
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(text.split())[:MAX_LINE_CHARS]


def _seconds(minutes: str, seconds: str, fraction: str | None) -> float:
    value = int(minutes) * 60 + int(seconds)
    if fraction:
        value += int(fraction) / (10 ** len(fraction))
    return float(value)


def looks_like_lrc(text: str) -> bool:
    """True when at least one line starts with an LRC time tag."""
    return any(_TIME_TAG.match(line.strip()) for line in text.splitlines())


def parse_lrc(text: str, source: str = "lrc") -> Lyrics:
    """Parse LRC text into timed lines, sorted by time; untimed lines keep no time.

    Lines with several time tags are repeated at each time. Empty timed lines (instrumental
    breaks) are dropped because they carry no words. The ``offset`` tag (milliseconds; positive
    means lyrics appear earlier) is applied, and negative results are clamped to 0.
    """
    offset = 0.0
    metadata: dict[str, str] = {}
    timed: list[tuple[float, int, str]] = []
    untimed: list[str] = []
    for order, raw in enumerate(text.splitlines()):
        line = raw.strip()
        if not line:
            continue
        offset_match = _OFFSET_TAG.match(line)
        if offset_match:
            offset = int(offset_match.group(1)) / 1000.0
            continue
        times: list[float] = []
        rest = line
        while match := _TIME_TAG.match(rest):
            times.append(_seconds(*match.groups()))
            rest = rest[match.end() :].lstrip()
        if times:
            words = _clean(rest)
            if words:
                timed.extend((t, order, words) for t in times)
            continue
        meta = _META_TAG.match(line)
        if meta:
            metadata[meta.group(1).lower()] = meta.group(2).strip()
            continue
        words = _clean(line)
        if words:
            untimed.append(words)
    if not timed:
        return Lyrics(tuple(LyricLine(t) for t in untimed), source, metadata)
    timed.sort(key=lambda item: (item[0], item[1]))
    lines = [LyricLine(words, max(0.0, t - offset)) for t, _, words in timed]
    # Untimed lines inside an otherwise synced file are usually credits: keep the timed ones.
    return Lyrics(tuple(lines), source, metadata)


def parse_plain(text: str, source: str = "plain") -> Lyrics:
    """Plain lyrics: one line per non-empty line, no times."""
    lines = (_clean(line) for line in text.splitlines())
    return Lyrics(tuple(LyricLine(line) for line in lines if line), source)


def parse_lyrics(text: str | None, source: str = "unknown") -> Lyrics:
    """LRC when the text has time tags, plain lines otherwise; None or blank gives no lines."""
    if not text or not text.strip():
        return Lyrics((), source)
    if looks_like_lrc(text):
        return parse_lrc(text, source)
    return parse_plain(text, source)


# Bytes that never occur in text files (tab, newlines, form feed and escape excepted).
_CONTROL_BYTES = bytes(set(range(32)) - {9, 10, 11, 12, 13, 27})


def looks_binary(data: bytes) -> bool:
    """True for data that is no text file: NUL bytes, or more than 5 % control bytes.

    Latin-1 would decode anything, so without this an image or an audio file saved as
    ``.lrc`` would reach the model as lines of mojibake (and take a share of the gate).
    """
    if not data:
        return False
    if b"\x00" in data:
        return True
    controls = len(data) - len(data.translate(None, _CONTROL_BYTES))
    return controls > 0.05 * len(data)


def decode_lyrics_bytes(data: bytes) -> str:
    """Decode a lyrics file of unknown encoding: BOMs first, then UTF-8, then Latin-1.

    Binary data (see :func:`looks_binary`) gives an empty string: it holds no lyrics.
    """
    for bom, encoding in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    if looks_binary(data):
        return ""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # Latin-1 maps every byte, so this never fails; it is the common legacy encoding.
        return data.decode("latin-1")


def read_lyrics_file(path: str, source: str | None = None) -> Lyrics:
    """Read a .lrc or .txt file (any common encoding) into Lyrics."""
    with open(path, "rb") as handle:
        text = decode_lyrics_bytes(handle.read())
    kind = source or ("lrc" if str(path).lower().endswith(".lrc") else "file")
    return parse_lyrics(text, kind)


def line_end_times(
    starts: Iterable[float], duration: float | None, max_line: float = 8.0
) -> list[float]:
    """End of each timed line: the next line's start, capped at ``max_line`` seconds of singing."""
    starts = list(starts)
    ends: list[float] = []
    for index, start in enumerate(starts):
        nxt = starts[index + 1] if index + 1 < len(starts) else start + max_line
        end = min(max(nxt, start), start + max_line)
        if duration is not None:
            end = min(end, max(duration, start))
        ends.append(end)
    return ends
