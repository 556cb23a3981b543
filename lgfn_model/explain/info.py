"""What the pictures say about a track besides the prediction: its name and where the lyrics
came from. Filled by ``lgfn explain`` from the file, by ``beet emotion --explain`` from the
library."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field


@dataclass
class TrackInfo:
    title: str
    artist: str = ""
    album: str = ""
    path: str = ""
    lyrics_source: str = "none"
    """``lrc``, ``beets``, ``embedded``, ``syncedlyrics:lrclib``, a file name, or ``none``."""
    extra: dict[str, str] = field(default_factory=dict)
    """More metadata rows for the HTML page (label -> value), in order."""

    @property
    def heading(self) -> str:
        return f"{self.title} \u2014 {self.artist}" if self.artist else self.title


def slug(text: str, limit: int = 80) -> str:
    """A file-name-safe stem: letters (accents kept), digits, ``-`` and ``_``."""
    text = unicodedata.normalize("NFC", text)
    text = re.sub(r"[^\w\-]+", "_", text, flags=re.UNICODE).strip("_.-")
    return text[:limit].rstrip("_.-") or "track"


def unique_stem(stem: str, taken: set[str]) -> str:
    """``stem``, or ``stem-2``, ``stem-3``... when already used (case-insensitively)."""
    candidate, number = stem, 1
    while candidate.lower() in taken:
        number += 1
        candidate = f"{stem}-{number}"
    taken.add(candidate.lower())
    return candidate
