"""Mood playlists: one M3U per mood, strongest first."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import fields


@dataclass(frozen=True)
class Playlist:
    mood: str
    path: Path
    entries: list[str]


def _title(item: Mapping[str, Any]) -> str:
    artist = fields.own_value(item, "artist") or ""
    title = fields.own_value(item, "title") or ""
    return f"{artist} - {title}" if artist else str(title)


def build_playlists(
    items: Iterable[Any], directory: Path, relative: bool = False
) -> list[Playlist]:
    """Group items by their ``mood`` (one of the four moods) and order each group by that
    mood's probability, highest first; items without an analysis come last, by title."""
    groups: dict[str, list[Any]] = {mood: [] for mood in fields.MOODS}
    for item in items:
        mood = fields.own_value(item, fields.MOOD)
        if mood in groups:
            groups[mood].append(item)
    playlists: list[Playlist] = []
    for mood, members in groups.items():
        key = fields.PROBABILITY_FIELDS[mood]

        def order(item: Any, key: str = key) -> tuple[float, str]:
            p = fields.own_value(item, key)
            return (-(float(p)) if p is not None else 1.0, _title(item).lower())

        entries: list[str] = []
        for item in sorted(members, key=order):
            path = os.fsdecode(item.path)
            if relative:
                path = os.path.relpath(path, directory)
            length = fields.own_value(item, "length")
            seconds = int(round(float(length))) if length else -1
            entries.append(f"#EXTINF:{seconds},{_title(item)}\n{path}")
        playlists.append(Playlist(mood, directory / f"{mood}.m3u", entries))
    return playlists


def render(playlist: Playlist) -> str:
    return "#EXTM3U\n" + "".join(f"{entry}\n" for entry in playlist.entries)


def write_playlist(playlist: Playlist) -> None:
    """Write atomically (a crash never leaves half a playlist)."""
    playlist.path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{playlist.mood}.", dir=playlist.path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", errors="surrogateescape") as out:
            out.write(render(playlist))
        os.chmod(temp, 0o644)  # mkstemp makes 0600; a playlist is for players to read
        os.replace(temp, playlist.path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
