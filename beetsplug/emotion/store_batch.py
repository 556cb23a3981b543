"""Store analysed items in groups: one SQLite commit per second of results, not one per item.

Each ``item.store()`` on its own is a transaction, and its commit (an fsync on most disks) cost
~19 ms here: nothing beside a 4 s CPU prediction, but more than the model's own time at GPU
speed. The group is kept in memory, never as a transaction held open while the model works, so
another beets command writing to the library meanwhile does not wait on us.

Files are written before their item joins the group (file first, then the database, as
before); ``flush`` runs when the group is due, before an album is aggregated, and at the end
of a run, also an interrupted one, so Ctrl-C still keeps every item whose file was written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

FLUSH_SECONDS = 1.0
"""At most this long between a result and its commit (a kill -9 loses at most this much)."""
FLUSH_ITEMS = 256


class StoreBatch:
    def __init__(
        self,
        defer_interrupts: Callable[[], Any],
        seconds: float = FLUSH_SECONDS,
        max_items: int = FLUSH_ITEMS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._defer = defer_interrupts
        self.seconds = seconds
        self.max_items = max_items
        self._clock = clock
        self._pending: list[tuple[Any, Callable[[], None]]] = []
        self._since = 0.0
        self.commits = 0

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, item: Any, on_stored: Callable[[], None] = lambda: None) -> None:
        """Queue ``item`` (its fields already updated) for the next commit; ``on_stored`` runs
        once it is in the database."""
        if not self._pending:
            self._since = self._clock()
        self._pending.append((item, on_stored))

    def due(self) -> bool:
        return bool(self._pending) and (
            len(self._pending) >= self.max_items or self._clock() - self._since >= self.seconds
        )

    def flush_if_due(self) -> None:
        if self.due():
            self.flush()

    def flush(self) -> None:
        """Store every queued item in one transaction, with Ctrl-C held back until done."""
        if not self._pending:
            return
        with self._defer():
            pending, self._pending = self._pending, []
            with pending[0][0]._db.transaction():
                for item, _ in pending:
                    item.store()
            self.commits += 1
            for _, on_stored in pending:
                on_stored()
