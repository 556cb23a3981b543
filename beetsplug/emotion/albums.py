"""Which albums a run aggregates, and when: once the last of their tracks in the run is done.

An album is aggregated as soon as its last analysed track has its result (so an interrupted
run keeps the albums it finished), and an album none of whose tracks needed analysis at the
end of the run. The aggregate reads every track's stored values, overlaid with this run's
fresh results (not in the database yet in a pretend run).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import fields

_WANTED = (*fields.ALBUM_FLOAT_FIELDS.values(), fields.MODEL, "length")


class AlbumTracker:
    def __init__(self, albums: Sequence[Any], related: Sequence[Any], todo: Sequence[Any]) -> None:
        """``albums`` are aggregated in any case; ``related`` (the albums the items belong
        to) only when one of their tracks is in ``todo``: an album must never keep the mood
        and model of tracks that have since changed."""
        known = {album.id for album in albums}
        redone = {getattr(item, "album_id", None) for item in todo}
        touched = [a for a in related if a.id in redone and a.id not in known]
        self.albums: list[Any] = [*albums, *touched]
        self._album_of: dict[int, Any] = {}
        self._waiting: dict[int, set[int]] = {}
        """Per album not yet aggregated: its tracks in ``todo`` still without a result."""
        self._fresh: dict[int, dict[str, Any]] = {}
        for album in self.albums:
            self._waiting[album.id] = set()
            for track in album.items():
                self._album_of[track.id] = album
        for item in todo:
            album = self._album_of.get(item.id)
            if album is not None:
                self._waiting[album.id].add(item.id)

    def record(self, item: Any, values: dict[str, Any]) -> None:
        """This run's result for ``item`` (its fields as stored, or as they would be)."""
        self._fresh[item.id] = values

    def done(self, item: Any) -> Any | None:
        """``item`` has its result (or failed): its album, when that was its last track."""
        album = self._album_of.get(item.id)
        if album is None or item.id not in self._waiting.get(album.id, set()):
            return None
        waiting = self._waiting[album.id]
        waiting.discard(item.id)
        if waiting:
            return None
        self._waiting.pop(album.id)
        return album

    def complete(self) -> list[Any]:
        """The albums with every track done that were not handed out by ``done``."""
        return [album for album in self.albums if self._waiting.get(album.id) == set()]

    def aggregate(self, album: Any) -> dict[str, Any] | None:
        """The album's values from its tracks; None when none of them has a result."""
        rows = []
        for track in album.items():
            row = {name: fields.own_value(track, name) for name in _WANTED}
            row.update({k: v for k, v in self._fresh.get(track.id, {}).items() if k in _WANTED})
            rows.append(row)
        return fields.aggregate_album(rows)
