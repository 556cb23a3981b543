"""Store analysed items in groups: one SQLite commit per second of results, not one per item.

Each ``item.store()`` on its own is a transaction, and its commit (an fsync on most disks) cost
~19 ms here: nothing beside a 4 s CPU prediction, but more than the model's own time at GPU
speed. The group is kept in memory, never as a transaction held open while the model works, so
another beets command writing to the library meanwhile does not wait on us.

Files are written before their item joins the group (file first, then the database, as
before); ``flush`` runs when the group is due, before an album is aggregated, and at the end
of a run, also an interrupted one, so Ctrl-C still keeps every item whose file was written.

A commit the database refuses (disk full, read-only, I/O error) stores none of the group: it
is rolled back and ``StoreFailed`` names the items, so the run can stop and list them.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

FLUSH_SECONDS = 1.0
"""At most this long between a result and its commit (a kill -9 loses at most this much)."""
FLUSH_ITEMS = 256


@dataclass
class Pending:
    item: Any
    on_stored: Callable[[], None]
    written: bool
    """Its file was written already (the database is then behind the file)."""


class StoreFailed(Exception):
    """The library database refused a write; nothing of that commit was stored.

    ``reason`` is one line (``/music/library.db: cannot store results (database or disk is
    full)``); ``pending`` are the items that were to be stored.
    """

    def __init__(self, reason: str, pending: list[Pending] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.pending = pending or []


def store_errors() -> tuple[type[BaseException], ...]:
    """What a refused database write raises: sqlite3's errors, and beets' DBAccessError for a
    read-only database or folder."""
    from beets.dbcore.db import DBAccessError

    return (sqlite3.Error, DBAccessError)


def commit(db: Any, work: Callable[[], None]) -> None:
    """Run ``work`` (stores) in one transaction that is committed whole or not at all.

    beets' transaction commits on the way out even after an error, so a group that failed
    half-way would be stored in part; and when its commit itself fails it keeps its lock, and
    the next transaction of the process waits for ever. So the commit is made here, inside,
    and any error rolls everything back before beets' own (now empty) commit.
    """
    errors = store_errors()
    try:
        with db.transaction():
            try:
                work()
                db._connection().commit()
            except errors:
                # SQLite may have rolled back already (it does on SQLITE_FULL at times).
                with suppress(sqlite3.Error):
                    db._connection().rollback()
                raise
    except errors as error:
        name = os.fsdecode(getattr(db, "path", b"") or b"the library")
        reason = " ".join(str(error).split()) or type(error).__name__
        raise StoreFailed(f"{name}: cannot store results ({reason})") from None


class StoreBatch:
    def __init__(
        self,
        defer_interrupts: Callable[[], Any],
        library: Any,
        seconds: float = FLUSH_SECONDS,
        max_items: int = FLUSH_ITEMS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._defer = defer_interrupts
        self.library = library
        """The beets Library the items belong to (their commits are its transactions)."""
        self.seconds = seconds
        self.max_items = max_items
        self._clock = clock
        self._pending: list[Pending] = []
        self._since = 0.0
        self.commits = 0

    def __len__(self) -> int:
        return len(self._pending)

    def add(
        self, item: Any, on_stored: Callable[[], None] = lambda: None, written: bool = False
    ) -> None:
        """Queue ``item`` (its fields already updated) for the next commit; ``on_stored`` runs
        once it is in the database. ``written``: its file holds the new values already."""
        if not self._pending:
            self._since = self._clock()
        self._pending.append(Pending(item, on_stored, written))

    def due(self) -> bool:
        return bool(self._pending) and (
            len(self._pending) >= self.max_items or self._clock() - self._since >= self.seconds
        )

    def flush_if_due(self) -> None:
        if self.due():
            self.flush()

    def flush(self) -> None:
        """Store every queued item in one transaction, with Ctrl-C held back until done.

        Raises ``StoreFailed`` (naming the queued items, none of them stored) when the
        database refuses the commit; the queue is empty afterwards either way.
        """
        if not self._pending:
            return
        with self._defer():
            pending, self._pending = self._pending, []

            def store() -> None:
                for entry in pending:
                    entry.item.store()

            try:
                commit(self.library, store)
            except StoreFailed as error:
                error.pending = pending
                raise
            self.commits += 1
            for entry in pending:
                entry.on_stored()
