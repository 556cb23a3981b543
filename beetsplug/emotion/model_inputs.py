"""Items to model inputs: lyrics looked up ahead of the model, and the predictor's stream.

Shared by an analysis run and ``--explain``, so a picture shows the lyrics a stored result
used. Lookups run on a small thread pool (only when a network source can be asked: local
lookups are quick) in item order, while the model works on the tracks before them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .lyrics_sources import LyricsFinder, LyricsOutcome
from .parallel import ordered_map


class LyricsInputs:
    """``lgfn_model.runtime.predictor.TrackInput`` per item, keyed by its index in ``items``."""

    def __init__(self, finder: LyricsFinder, items: Sequence[Any], force: bool) -> None:
        self.finder = finder
        self.force = force
        self._items: list[Any] = list(items)
        self._outcomes: list[LyricsOutcome | None] = [None] * len(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def _lookup(self, index: int) -> int:
        # Without force, sources that said "not found" before are not asked again.
        self._outcomes[index] = self.finder.find(self._items[index], force=self.force)
        return index

    def __iter__(self) -> Iterator[Any]:
        from lgfn_model.runtime.predictor import TrackInput

        threads = self.finder.settings.threads if self.finder.uses_network else 0
        for index in ordered_map(self._lookup, range(len(self._items)), threads):
            outcome = self._outcomes[index]
            path = Path(os.fsdecode(self._items[index].path))
            yield TrackInput(path, outcome.lyrics if outcome else None, index)

    def take(self, key: int) -> tuple[Any, LyricsOutcome]:
        """The item behind a result's ``input.key`` and its lookup; both are let go here, so
        a long run does not keep every item and its lyrics until its end."""
        item, outcome = self._items[key], self._outcomes[key]
        self._items[key] = self._outcomes[key] = None
        return item, outcome or LyricsOutcome()


def predict_stream(
    predictor: Any, inputs: Iterable[Any], warn: Callable[[str], None] | None = None
) -> Iterator[Any]:
    """``predictor.predict_many(inputs)``, its warnings (GPU out of memory) going to ``warn``
    for this stream only: the loaded predictor is shared by every run of the process
    (model.py caches it), so a later run's (or ``--explain``'s) warnings never land in an
    earlier run's summary."""
    results = predictor.predict_many(inputs, warn=warn)
    try:
        yield from results
    finally:
        results.close()
