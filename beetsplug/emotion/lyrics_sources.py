"""Where a track's lyrics come from: first found wins, in the configured order.

Local sources (cheap, always tried first when enabled):

``beets``     the item's ``lyrics`` field (LRC when beets' lyrics plugin has ``synced: yes``);
``lrc``       an ``.lrc`` file beside the audio file;
``embedded``  lyrics inside the file: ID3 SYLT/USLT, Vorbis LYRICS, MP4 ``©lyr``, ASF, APE.

Network sources (``syncedlyrics``, ``genius``) live in :mod:`.lyrics_network`. A network
source that answers "not found" is remembered on the item and not asked again until
``--force``; an error (timeout, HTTP 429/5xx, malformed answer) is reported and not
remembered.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import fields
from .lyrics_network import (
    NETWORK_SOURCES,
    LyricsLookupError,
    NetworkLyrics,
    NetworkSources,
    SourceOff,
)

if TYPE_CHECKING:
    from lgfn_model.lyrics import Lyrics

LOCAL_SOURCES: tuple[str, ...] = ("beets", "lrc", "embedded")
ALL_SOURCES: tuple[str, ...] = (*LOCAL_SOURCES, *NETWORK_SOURCES)
NO_LYRICS = "none"


class LyricsSourceError(Exception):
    """A local source that could not be read; the message is one line naming the file."""


@dataclass
class LyricsOutcome:
    """What the lookup found for one item, and what the run should remember or report."""

    lyrics: Lyrics | None = None
    source: str = NO_LYRICS
    misses: set[str] = field(default_factory=set)
    """Network sources that answered "not found" in this lookup."""
    errors: list[str] = field(default_factory=list)
    fetched: NetworkLyrics | None = None
    """Lyrics text fetched from the network (what ``store_lyrics`` may keep)."""
    origin: Path | None = None
    """The ``.lrc`` file the lyrics were read from (the importer copies it along)."""


# -- local sources ---------------------------------------------------------------------------


def from_beets_field(item: Mapping[str, Any]) -> Lyrics | None:
    """The item's ``lyrics`` field, parsed with beets' own helper (translations dropped)."""
    from beets.util.lyrics import Lyrics as BeetsLyrics

    from lgfn_model.lyrics import parse_lyrics

    text = fields.own_value(item, "lyrics")
    if not text or not str(text).strip():
        return None
    text = str(text)
    if "\n\nSource: " in text and not fields.own_value(item, "lyrics_backend"):
        value = BeetsLyrics.from_legacy_text(text)  # old beets appended the source URL
    else:
        value = BeetsLyrics.from_item(item)  # type: ignore[arg-type]
    if value.instrumental or not value.original_text.strip():
        return None
    parsed = parse_lyrics(value.original_text, "beets")
    return parsed or None


def is_instrumental(item: Mapping[str, Any]) -> bool:
    """beets' lyrics plugin marks instrumentals with ``lyrics_instrumental``."""
    flag = fields.own_value(item, "lyrics_instrumental")
    return str(flag).lower() in {"1", "true", "yes"}


def sidecar_paths(audio: Path) -> list[Path]:
    """``song.lrc`` (any case of the extension) beside ``song.mp3``."""
    stem = audio.with_suffix("")
    return [Path(f"{stem}{ext}") for ext in (".lrc", ".LRC", ".Lrc")]


def find_sidecar(audio: Path) -> Path | None:
    return next((path for path in sidecar_paths(audio) if path.is_file()), None)


def from_sidecar(audio: Path) -> Lyrics | None:
    from lgfn_model.lyrics import read_lyrics_file

    candidate = find_sidecar(audio)
    if candidate is None:
        return None
    try:
        parsed = read_lyrics_file(str(candidate), "lrc")
    except OSError as error:
        reason = error.strerror or str(error)
        raise LyricsSourceError(f"{candidate}: cannot read lyrics ({reason})") from None
    return parsed or None


def from_embedded(audio: Path) -> Lyrics | None:
    """Synced lyrics first (ID3 SYLT in milliseconds), then plain or LRC text tags."""
    import mutagen

    from lgfn_model.lyrics import LyricLine, Lyrics, parse_lyrics

    try:
        media = mutagen.File(str(audio))
    except Exception as error:  # mutagen raises many types for damaged files
        reason = " ".join(str(error).split()) or type(error).__name__
        raise LyricsSourceError(f"{audio}: cannot read embedded lyrics ({reason})") from None
    tags = getattr(media, "tags", None)
    if not tags:
        return None
    getall = getattr(tags, "getall", None)
    if getall is not None:  # ID3 (MP3, WAV, AIFF)
        for frame in getall("SYLT"):
            if getattr(frame, "format", 2) != 2:  # 1 = MPEG frames: no usable times
                continue
            lines = [
                LyricLine(" ".join(str(text).split()), ms / 1000.0)
                for text, ms in frame.text
                if str(text).strip()
            ]
            if lines:
                return Lyrics(tuple(sorted(lines, key=lambda line: line.start or 0.0)), "embedded")
        for frame in getall("USLT"):
            parsed = parse_lyrics(str(frame.text), "embedded")
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
        parsed = parse_lyrics(text, "embedded")
        if parsed:
            return parsed
    return None


# -- the chain -------------------------------------------------------------------------------


@dataclass
class LyricsSettings:
    sources: Sequence[str] = ALL_SOURCES
    providers: Sequence[str] = ("lrclib", "musixmatch", "netease")
    genius_token: str = ""
    timeout: float = 10.0
    threads: int = 4

    @property
    def network(self) -> list[str]:
        return [s for s in self.sources if s in NETWORK_SOURCES]


class LyricsFinder:
    """Runs the enabled sources for one item at a time; thread-safe for network lookups."""

    def __init__(self, settings: LyricsSettings, log: Any = None) -> None:
        unknown = [s for s in settings.sources if s not in ALL_SOURCES]
        if unknown:
            names = ", ".join(unknown)
            raise ValueError(
                f"unknown lyrics source(s) {names}; choose from {', '.join(ALL_SOURCES)}"
            )
        self.settings = settings
        self._log = log
        self.network = NetworkSources(
            settings.network,
            providers=settings.providers,
            genius_token=settings.genius_token,
            timeout=settings.timeout,
            log=log,
        )
        self._local: dict[str, Callable[[Any, Path], Lyrics | None]] = {
            "beets": lambda item, _path: from_beets_field(item),
            "lrc": lambda _item, path: from_sidecar(path),
            "embedded": lambda _item, path: from_embedded(path),
        }

    @property
    def uses_network(self) -> bool:
        return self.network.enabled

    def find(self, item: Any, force: bool = False) -> LyricsOutcome:
        outcome = LyricsOutcome()
        path = Path(os.fsdecode(item.path))
        known_misses = set() if force else fields.lyrics_misses(item)
        if "beets" in self.settings.sources and is_instrumental(item):
            return outcome
        for source in self.settings.sources:
            if source in self._local:
                try:
                    found = self._local[source](item, path)
                except LyricsSourceError as error:
                    outcome.errors.append(str(error))
                    continue
                if found:
                    outcome.lyrics, outcome.source = found.with_source(source), source
                    if source == "lrc":
                        outcome.origin = find_sidecar(path)
                    return outcome
                continue
            if source in known_misses:
                outcome.misses.add(source)  # still a miss: keep remembering it
                continue
            try:
                fetched = self.network.lookup(source, item)
            except SourceOff:
                continue  # the summary says so once, not on every track
            except LyricsLookupError as error:
                outcome.errors.append(f"{path}: {error}")
                continue
            if fetched is None:
                outcome.misses.add(source)
                continue
            from lgfn_model.lyrics import parse_lyrics

            parsed = parse_lyrics(fetched.text, fetched.label)
            if not parsed:
                outcome.misses.add(source)
                continue
            outcome.lyrics, outcome.source, outcome.fetched = parsed, fetched.label, fetched
            return outcome
        return outcome
