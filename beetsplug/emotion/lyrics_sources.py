"""Where a track's lyrics come from: first found wins, in the configured order.

Local sources (cheap, always tried first when enabled):

``beets``     the item's ``lyrics`` field (LRC when beets' lyrics plugin has ``synced: yes``);
``lrc``       an ``.lrc`` file beside the audio file;
``embedded``  lyrics inside the file: ID3 SYLT/USLT, Vorbis LYRICS, MP4 ``©lyr``, ASF, APE.

Network sources (``syncedlyrics``, ``genius``) live in :mod:`.lyrics_network`. A network
source that answers "not found" is remembered on the item and not asked again until
``--force``; an error (timeout, HTTP 429/5xx, malformed answer) is reported and not
remembered.

Every source is untrusted: what it gives is capped (``MAX_LYRICS_BYTES`` of a file,
``MAX_LYRICS_CHARS`` of a text: beyond, one ``lyrics lookup:`` line and the next source) and
must be text (``looks_like_text``: random bytes in a USLT frame decode to "text" too); text
that is not is "no lyrics from this source", silently, and the chain moves on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
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
    from lgfn_model.data.lyrics import Lyrics

LOCAL_SOURCES: tuple[str, ...] = ("beets", "lrc", "embedded")
ALL_SOURCES: tuple[str, ...] = (*LOCAL_SOURCES, *NETWORK_SOURCES)
NO_LYRICS = "none"


class LyricsSourceError(Exception):
    """A local source that could not be read; the message is one line naming the file."""


def _usable(text: str, where: str, what: str = "lyrics") -> str | None:
    """``text`` as lyrics (see ``lgfn_model.data.lyrics.usable_text``); None when it is no text.

    Raises LyricsSourceError naming ``where`` for a text over ``MAX_LYRICS_CHARS``.
    """
    from lgfn_model.data.lyrics_files import LyricsFileError, usable

    try:
        return usable(text, where, what)
    except LyricsFileError as error:
        raise LyricsSourceError(str(error)) from None


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
    from_file: bool = False
    """The beets field held the file's own embedded lyrics (copied there by an import)."""

    @property
    def label(self) -> str:
        """Where the lyrics came from, as stored in ``emotion_lyrics`` and counted in the
        summary: lyrics beets copied from the file are ``embedded``, as they are."""
        return "embedded" if self.from_file else self.source


# -- local sources ---------------------------------------------------------------------------


def from_beets_field(item: Mapping[str, Any]) -> Lyrics | None:
    """The item's ``lyrics`` field, parsed with beets' own helper (translations dropped)."""
    from beets.util.lyrics import Lyrics as BeetsLyrics

    from lgfn_model.data.lyrics import LyricsTooLarge, check_text_size, parse_lyrics

    text = fields.own_value(item, "lyrics")
    if not text or not str(text).strip():
        return None
    text = str(text)
    where = f"{_item_path(item)}: beets lyrics field"
    try:
        check_text_size(text, "lyrics")  # before beets' helper splits it up
    except LyricsTooLarge as error:
        raise LyricsSourceError(f"{where}: {error}; not used") from None
    if "\n\nSource: " in text and not fields.own_value(item, "lyrics_backend"):
        value = BeetsLyrics.from_legacy_text(text)  # old beets appended the source URL
    else:
        value = BeetsLyrics.from_item(item)  # type: ignore[arg-type]
    if value.instrumental or not value.original_text.strip():
        return None
    usable = _usable(value.original_text, where)
    if usable is None:
        return None
    parsed = parse_lyrics(usable, "beets")
    return parsed or None


def _item_path(item: Mapping[str, Any]) -> str:
    path = getattr(item, "path", None)
    if path is None:
        getter = getattr(item, "get", None)
        path = getter("path") if getter is not None else None
    return os.fsdecode(path) if path else "(no path)"


def is_instrumental(item: Mapping[str, Any]) -> bool:
    """beets' lyrics plugin marks instrumentals with ``lyrics_instrumental``."""
    flag = fields.own_value(item, "lyrics_instrumental")
    return str(flag).lower() in {"1", "true", "yes"}


# The file-based sources are lgfn_model's (``lgfn predict`` reads the same lyrics for the same
# file); here their errors become this module's.


def sidecar_paths(audio: Path) -> list[Path]:
    """``song.lrc`` (any case of the extension) beside ``song.mp3``."""
    from lgfn_model.data.lyrics_files import sidecar_paths as paths

    return paths(audio)


def find_sidecar(audio: Path) -> Path | None:
    from lgfn_model.data.lyrics_files import find_sidecar as find

    return find(audio)


def from_sidecar(audio: Path) -> Lyrics | None:
    from lgfn_model.data import lyrics_files

    try:
        return lyrics_files.from_sidecar(audio)
    except lyrics_files.LyricsFileError as error:
        raise LyricsSourceError(str(error)) from None


def from_embedded(audio: Path) -> Lyrics | None:
    """Synced lyrics first (ID3 SYLT in milliseconds), then plain or LRC text tags."""
    from lgfn_model.data import lyrics_files

    try:
        return lyrics_files.from_embedded(audio)
    except lyrics_files.LyricsFileError as error:
        raise LyricsSourceError(str(error)) from None


def _copied_from_file(item: Any, audio: Path, found: Lyrics) -> bool:
    """Whether the beets field holds the file's embedded lyrics, as beets' import copies them
    (no lyrics plugin fetched them: no ``lyrics_backend``); those are reported as embedded."""
    if fields.own_value(item, "lyrics_backend"):
        return False
    try:
        embedded = from_embedded(audio)
    except LyricsSourceError:
        return False
    return embedded is not None and embedded.texts == found.texts


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
                    # beets' import copied the file's own lyrics into the field: say so
                    outcome.from_file = source == "beets" and _copied_from_file(item, path, found)
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
            from lgfn_model.data.lyrics import parse_lyrics

            # An answer too long or not text is an error, not "not found": reported, not
            # remembered (the provider may answer properly next time).
            try:
                usable = _usable(fetched.text, f"{path}: {fetched.label}", "answer")
            except LyricsSourceError as error:
                outcome.errors.append(str(error))
                continue
            if usable is None:
                outcome.errors.append(f"{path}: {fetched.label}: the answer is not text; not used")
                continue
            if usable != fetched.text:  # mojibake repaired: store_lyrics keeps the repair
                fetched = replace(fetched, text=usable)
            parsed = parse_lyrics(usable, fetched.label)
            if not parsed:
                outcome.misses.add(source)
                continue
            outcome.lyrics, outcome.source, outcome.fetched = parsed, fetched.label, fetched
            return outcome
        return outcome
