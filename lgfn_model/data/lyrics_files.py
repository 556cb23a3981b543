"""Lyrics that travel with an audio file: an ``.lrc`` beside it, or lyrics embedded in it.

One finder for ``lgfn predict`` and the beets plugin, so both read the same lyrics for the
same file: a lyrics file given explicitly wins, then the sidecar (``song.lrc`` beside
``song.mp3``), then the embedded tags (ID3 SYLT, then USLT; Vorbis ``LYRICS``; MP4 ``©lyr``;
ASF; APE). Everything read is untrusted: capped by size and checked to be text (see
:mod:`lgfn_model.data.lyrics`); a source that cannot be used is one line in ``errors`` and the
next one is asked.

No beets and no torch here: mutagen reads the tags.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lgfn_model.data.lyrics import (
    MAX_LINE_CHARS,
    LyricLine,
    Lyrics,
    LyricsTooLarge,
    parse_lyrics,
    parse_plain,
    read_lyrics_file,
    usable_text,
)

FILE_SOURCES: tuple[str, ...] = ("lrc", "embedded")
"""The sources found from the audio file alone, in the order they are asked."""

NO_LYRICS = "none"


class LyricsFileError(Exception):
    """A lyrics source that could not be used; the message is one line naming the file."""


@dataclass
class FoundLyrics:
    """What the search found: the lyrics (None: none), where from, and what failed on the way."""

    lyrics: Lyrics | None = None
    source: str = NO_LYRICS
    """``file`` (given explicitly), ``lrc``, ``embedded`` or ``none``."""
    origin: Path | None = None
    """The lyrics file read, when the lyrics came from one."""
    errors: list[str] = field(default_factory=list)


def usable(text: str, where: str, what: str = "lyrics") -> str | None:
    """``text`` as lyrics (mojibake undone); None when it is not text.

    Raises LyricsFileError naming ``where`` for a text over the size limit.
    """
    try:
        return usable_text(text, what)
    except LyricsTooLarge as error:
        raise LyricsFileError(f"{where}: {error}; not used") from None


def sidecar_paths(audio: Path) -> list[Path]:
    """``song.lrc`` (any common case of the extension) beside ``song.mp3``."""
    stem = audio.with_suffix("")
    return [Path(f"{stem}{ext}") for ext in (".lrc", ".LRC", ".Lrc")]


def find_sidecar(audio: Path) -> Path | None:
    return next((path for path in sidecar_paths(audio) if path.is_file()), None)


def read_file(path: Path, source: str | None = None) -> Lyrics | None:
    """A lyrics file (``.lrc`` or plain text); None when it holds no lyrics."""
    try:
        parsed = read_lyrics_file(str(path), source)
    except LyricsTooLarge as error:
        raise LyricsFileError(f"{path}: {error}; not used") from None
    except OSError as error:
        reason = error.strerror or str(error)
        raise LyricsFileError(f"{path}: cannot read lyrics ({reason})") from None
    return parsed or None


def from_sidecar(audio: Path) -> Lyrics | None:
    candidate = find_sidecar(audio)
    return None if candidate is None else read_file(candidate, "lrc")


def _clean_line(text: str) -> str:
    """One SYLT entry as a lyric line: the parser's cleaning (controls out, length capped)."""
    return " ".join(parse_plain(text).texts)[:MAX_LINE_CHARS]


def from_embedded(audio: Path) -> Lyrics | None:
    """Synced lyrics first (ID3 SYLT in milliseconds), then plain or LRC text tags."""
    import mutagen

    try:
        media = mutagen.File(str(audio))
    except Exception as error:  # mutagen raises many types for damaged files
        reason = " ".join(str(error).split()) or type(error).__name__
        raise LyricsFileError(f"{audio}: cannot read embedded lyrics ({reason})") from None
    tags = getattr(media, "tags", None)
    if not tags:
        return None
    getall = getattr(tags, "getall", None)
    if getall is not None:  # ID3 (MP3, WAV, AIFF)
        for frame in getall("SYLT"):
            if getattr(frame, "format", 2) != 2:  # 1 = MPEG frames: no usable times
                continue
            pairs = [(str(text), ms) for text, ms in frame.text if str(text).strip()]
            # The frame's texts are judged together (one word per entry is common in SYLT).
            joined = usable("\n".join(text for text, _ in pairs), f"{audio}: ID3 SYLT")
            if joined is None:
                continue
            texts = joined.split("\n")  # mojibake repair keeps the line breaks
            if len(texts) != len(pairs):
                texts = [text for text, _ in pairs]
            lines = [
                LyricLine(clean, ms / 1000.0)
                for text, (_, ms) in zip(texts, pairs, strict=True)
                if (clean := _clean_line(text))
            ]
            if lines:
                return Lyrics(tuple(sorted(lines, key=lambda line: line.start or 0.0)), "embedded")
        for frame in getall("USLT"):
            parsed = parse_lyrics(usable(str(frame.text), f"{audio}: ID3 USLT"), "embedded")
            if parsed:
                return parsed
        return None
    for key in ("LYRICS", "UNSYNCEDLYRICS", "©lyr", "WM/Lyrics", "Lyrics"):
        try:
            value = tags.get(key)
        except (KeyError, ValueError, TypeError):
            value = None
        if not value:
            continue
        text = "\n".join(str(v) for v in value) if isinstance(value, list) else str(value)
        parsed = parse_lyrics(usable(text, f"{audio}: {key} tag"), "embedded")
        if parsed:
            return parsed
    return None


def find_lyrics(
    audio: str | os.PathLike[str],
    given: str | os.PathLike[str] | None = None,
    sources: Sequence[str] = FILE_SOURCES,
) -> FoundLyrics:
    """The lyrics for ``audio``: ``given`` (a lyrics file) when there is one, else the first of
    ``sources`` that has some. A given file that cannot be used is an error line, and then
    nothing else is tried: the caller said which lyrics to use."""
    audio = Path(audio)
    found = FoundLyrics()
    if given is not None:
        path = Path(given)
        try:
            lyrics = read_file(path)
        except LyricsFileError as error:
            found.errors.append(str(error))
            return found
        if lyrics:
            found.lyrics, found.source, found.origin = lyrics.with_source("file"), "file", path
        return found
    readers = {"lrc": from_sidecar, "embedded": from_embedded}
    for source in sources:
        try:
            lyrics = readers[source](audio)
        except LyricsFileError as error:
            found.errors.append(str(error))
            continue
        if lyrics:
            found.lyrics, found.source = lyrics.with_source(source), source
            found.origin = find_sidecar(audio) if source == "lrc" else None
            return found
    return found
