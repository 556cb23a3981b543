"""Lyrics as the model sees them: lines of text, each with an optional start time.

Torch-free on purpose: the beets plugin parses lyrics without loading the model.

LRC is parsed leniently because real files are messy: several timestamps on one line
(``[00:12.00][01:30.50]chorus``), ``[mm:ss]``, ``[mm:ss.x]``, ``[mm:ss.xxx]``, ``[mm:ss:xx]``,
an ``[offset:+/-ms]`` tag, metadata tags (``[ar:...]``), word-level ``<mm:ss.xx>`` stamps and
garbage. Anything that is not understood is treated as plain text or dropped, never raised.

Lyrics are untrusted input, so what is accepted is bounded: at most ``MAX_LYRICS_BYTES`` of a
file or ``MAX_LYRICS_CHARS`` of a text (:class:`LyricsTooLarge` beyond), offsets within
``MAX_OFFSET_SECONDS``, start times finite and within ``[0, MAX_START_SECONDS]``, and only
text that :func:`looks_like_text` (random bytes in a tag decode to "text" too).
"""

from __future__ import annotations

import errno
import math
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

# One leading time tag. Minutes may exceed 59 (long mixes); fractions may be 1-3 digits.
_TIME_TAG = re.compile(r"\[\s*(\d{1,4})\s*:\s*(\d{1,2})(?:\s*[.:]\s*(\d{1,3}))?\s*\]")
_META_TAG = re.compile(r"^\[\s*([A-Za-z#]+)\s*:(.*)\]\s*$")
_WORD_STAMP = re.compile(r"<\s*\d{1,4}\s*:\s*\d{1,2}(?:\s*[.:]\s*\d{1,3})?\s*>")
# At most 12 digits: int() of a longer run is slow (and past 4300 digits raises), and 12 digits
# of milliseconds are already far beyond MAX_OFFSET_SECONDS.
_OFFSET_TAG = re.compile(r"^\[\s*offset\s*:\s*([+-]?\d{1,12})\s*\]\s*$", re.IGNORECASE)
# Lines this long are not lyrics (a binary blob or a whole page pasted into one line).
MAX_LINE_CHARS = 500

MAX_LYRICS_BYTES = 4 * 2**20
"""The most of a lyrics file that is read (4 MiB). The longest songs' LRC files are tens of kB;
a larger file is something else (a 16 GB sparse file would be read whole into memory)."""
MAX_LYRICS_CHARS = MAX_LYRICS_BYTES
"""The longest lyrics text accepted from a tag, the beets field or a network answer."""
MAX_OFFSET_SECONDS = 86_400.0
"""An ``[offset:]`` beyond a day is not an offset; it is ignored. ``-99999999999999999999``
ms pushed every line ~3e15 years into the track, and the model's time prior overflowed to NaN."""
MAX_START_SECONDS = 86_400.0
"""Line start times are clamped to [0, a day]; a non-finite one makes the line untimed."""


class LyricsTooLarge(OSError):
    """A lyrics file or text beyond the limits above; the message is one line (no path).

    An OSError (EFBIG), so that callers which handle "cannot read this lyrics file" already
    (training's cache, ``lgfn explain``) handle this one too.
    """

    def __init__(self, message: str) -> None:
        super().__init__(errno.EFBIG, message)

    def __str__(self) -> str:
        return str(self.strerror)


def human_size(size: float, whole: bool = True) -> str:
    """``16.0 GB``, ``4 MB``, ``812 bytes``: binary units, as ``ls -h`` counts them; ``whole``
    drops the ``.0`` of a whole number."""
    if size < 1024:
        return f"{int(size)} bytes"
    for unit in ("kB", "MB", "GB", "TB"):
        size /= 1024
        if size < 1024 or unit == "TB":
            break
    text = f"{size:.1f}"
    return f"{text.removesuffix('.0') if whole else text} {unit}"


def check_text_size(text: str, what: str = "lyrics") -> None:
    """Raise :class:`LyricsTooLarge` for a text longer than ``MAX_LYRICS_CHARS``."""
    if len(text) > MAX_LYRICS_CHARS:
        raise LyricsTooLarge(
            f"{what} too long ({len(text):,} characters, limit {MAX_LYRICS_CHARS:,})"
        )


@dataclass(frozen=True)
class LyricLine:
    """One line of lyrics; ``start`` is in seconds from the start of the track, or None."""

    text: str
    start: float | None = None

    def __post_init__(self) -> None:
        # Every source builds lines here (LRC, ID3 SYLT, network answers): one place keeps
        # times the model can compute with. NaN or infinity would poison every output.
        if self.start is None:
            return
        start = float(self.start)
        kept = min(max(start, 0.0), MAX_START_SECONDS) if math.isfinite(start) else None
        object.__setattr__(self, "start", kept)


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

    @property
    def whole_text(self) -> str:
        """Every line, one per row: what a ``song_text`` model's whole-text vector reads."""
        return "\n".join(self.texts)

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
    means lyrics appear earlier) is applied, and results are clamped to [0, MAX_START_SECONDS];
    an offset beyond ``MAX_OFFSET_SECONDS`` is ignored.
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
            value = int(offset_match.group(1)) / 1000.0
            if abs(value) <= MAX_OFFSET_SECONDS:
                offset = value
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


# Lyrics with the LRC markup taken out: time tags, metadata tags, word stamps.
_MARKUP = re.compile(r"\[[^\[\]\n]{0,64}\]|<\s*\d{1,4}\s*:\s*\d{1,2}(?:\s*[.:]\s*\d{1,3})?\s*>")
# Characters no lyrics hold: controls, lone surrogates, private use, unassigned code points.
# (Format characters, Cf, stay allowed: Persian needs ZWNJ, emoji ZWJ, Arabic and Hebrew the
# direction marks.)
_NOT_TEXT_CATEGORIES = frozenset({"Cc", "Cs", "Co", "Cn"})
_REPLACEMENT = "\ufffd"


def looks_like_text(text: str) -> bool:
    """True for text that can be lyrics, in any script; False for data decoded as text.

    Random bytes in a tag decode to "text" (Latin-1 maps every byte; UTF-16 makes CJK-looking
    runs of them), and the model would read it as lyrics and give it a share of the gate.
    Without the LRC markup, whitespace and digits (``line 10234``, ``99 Luftballons``), text is
    lyrics when at least half its characters are letters or combining marks (category L or M:
    every script) and at most 2 % (plus one) are control characters, U+FFFD (bytes that failed
    to decode), lone surrogates, private-use or unassigned code points.
    """
    # Counting distinct characters keeps this fast on megabytes: the loop below runs over a
    # few thousand code points at most, Counter over the text runs in C.
    counts = Counter(_MARKUP.sub("", text))
    total = letters = bad = 0
    for char, count in counts.items():
        category = unicodedata.category(char)
        if char.isspace() or category == "Nd":
            continue
        total += count
        if category[0] in "LM":
            letters += count
        elif category in _NOT_TEXT_CATEGORIES or char == _REPLACEMENT:
            bad += count
    return letters > 0 and 2 * letters >= total and bad <= 0.02 * total + 1


def _cp1252_to_bytes() -> dict[int, int]:
    # 0x81, 0x8D, 0x8F, 0x90 and 0x9D are undefined in cp1252 (Windows keeps them as U+0081
    # and so on, which Latin-1 encodes back): "ignore" leaves them out of the table.
    signs = {byte: bytes([byte]).decode("cp1252", errors="ignore") for byte in range(0x80, 0xA0)}
    return {ord(sign): byte for byte, sign in signs.items() if sign}


# Windows-1252's letters and signs in 0x80-0x9F (€ ‚ ƒ „ … Š Œ Ž ‘ ’ “ ” • – — ˜ ™ š œ ž Ÿ),
# back to their bytes; with Latin-1 for the rest, every way UTF-8 gets read as "ANSI" is undone.
_CP1252_BYTES = _cp1252_to_bytes()
# The other way: U+0080-U+009F (Latin-1's reading of those bytes) to the Windows-1252 signs.
_C1_AS_CP1252 = {byte: chr(sign) for sign, byte in _CP1252_BYTES.items()}


def repair_mojibake(text: str) -> str:
    """UTF-8 that was read as Windows-1252 or Latin-1 (``CafÃ©``, ``ÐŸÑ€Ð¸Ð²ÐµÑ‚``), undone;
    and Windows-1252 read as Latin-1 (``can\x92t``), undone.

    Exactly reversible, so it is repaired rather than refused; the test is strict (the whole
    text must re-encode to valid UTF-8), which real Latin-1 text practically never does: an
    accented capital would have to be followed by one or more of ``€‚ƒ…¡¢£©«®°±»`` and the
    like. C1 control characters (U+0080-U+009F) left after that are Windows-1252 text that was
    decoded as Latin-1 (its quotes and dashes: ``\x92`` is ``’``); no lyrics hold them as
    controls, and :func:`looks_like_text` would refuse the text for them, so they become their
    Windows-1252 signs. Other text is returned as it is.
    """
    for _ in range(2):  # twice-garbled text exists (tag editors that "fix" encodings)
        if text.isascii():
            return text
        try:
            text = text.translate(_CP1252_BYTES).encode("latin-1").decode("utf-8")
        except UnicodeError:
            break
    return text.translate(_C1_AS_CP1252)


def usable_text(text: str, what: str = "lyrics") -> str | None:
    """The text as lyrics: mojibake undone; None when it is not text (see looks_like_text).

    Raises :class:`LyricsTooLarge` for text over ``MAX_LYRICS_CHARS``.
    """
    check_text_size(text, what)
    text = repair_mojibake(text)
    return text if looks_like_text(text) else None


def read_lyrics_bytes(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a lyrics file, at most ``MAX_LYRICS_BYTES`` of them.

    Raises :class:`LyricsTooLarge` (before reading anything, when the size is known) for a
    larger file, OSError when it cannot be read.
    """
    with open(path, "rb") as handle:
        try:
            size = os.fstat(handle.fileno()).st_size
        except OSError:
            size = 0
        if size > MAX_LYRICS_BYTES:
            raise LyricsTooLarge(_too_large(size))
        # A pipe or a file growing meanwhile has no trustworthy size: read one byte past the
        # limit and refuse if it is there.
        data = handle.read(MAX_LYRICS_BYTES + 1)
    if len(data) > MAX_LYRICS_BYTES:
        raise LyricsTooLarge(_too_large(max(size, len(data)), more=True))
    return data


def _too_large(size: int, more: bool = False) -> str:
    shown, limit = human_size(size, whole=False), human_size(MAX_LYRICS_BYTES)
    if not more and float(shown.split()[0]) == float(limit.split()[0]):
        shown, limit = f"{size:,} bytes", f"{MAX_LYRICS_BYTES:,} bytes"  # not "4.0 MB, limit 4 MB"
    return f"lyrics file too large ({'over ' if more else ''}{shown}, limit {limit})"


def read_lyrics_file(path: str | os.PathLike[str], source: str | None = None) -> Lyrics:
    """Read a .lrc or .txt file (any common encoding) into Lyrics; no lines when the file holds
    no text (binary data, or text that :func:`looks_like_text` refuses).

    Raises :class:`LyricsTooLarge` for a file over ``MAX_LYRICS_BYTES``, OSError when it
    cannot be read.
    """
    text = decode_lyrics_bytes(read_lyrics_bytes(path)) or ""
    kind = source or ("lrc" if str(path).lower().endswith(".lrc") else "file")
    usable = usable_text(text) if text else None
    return parse_lyrics(usable, kind)


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
