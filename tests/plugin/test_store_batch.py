"""Analysed items reach the database in groups: one commit per second of results."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from beets.library import Item, Library

from beetsplug.emotion.store_batch import StoreBatch


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _library(tmp_path: Path) -> tuple[Library, list[Item]]:
    lib = Library(str(tmp_path / "library.db"), str(tmp_path / "music"))
    items = []
    for n in range(3):
        item = Item(title=f"T{n}", path=str(tmp_path / f"{n}.flac").encode())
        lib.add(item)
        items.append(item)
    return lib, items


def _moods_seen_by_another_connection(tmp_path: Path) -> list[str | None]:
    other = Library(str(tmp_path / "library.db"), str(tmp_path / "music"))
    try:
        return [i.get("mood") for i in other.items("title:T")]
    finally:
        other._close()


def test_items_are_stored_together_once_due(tmp_path: Path) -> None:
    lib, items = _library(tmp_path)
    clock = FakeClock()
    stored: list[str] = []
    batch = StoreBatch(nullcontext, lib, seconds=1.0, max_items=10, clock=clock)
    for item in items:
        item["mood"] = "sad"
        batch.add(item, lambda title=item.title: stored.append(title))
        clock.now += 0.2
    assert not batch.due() and len(batch) == 3
    assert _moods_seen_by_another_connection(tmp_path) == [None, None, None]

    clock.now += 0.5
    assert batch.due()
    batch.flush_if_due()
    assert batch.commits == 1 and len(batch) == 0
    assert stored == ["T0", "T1", "T2"]
    assert _moods_seen_by_another_connection(tmp_path) == ["sad", "sad", "sad"]
    lib._close()


def test_a_full_batch_is_due_at_once_and_an_empty_one_never(tmp_path: Path) -> None:
    lib, items = _library(tmp_path)
    batch = StoreBatch(nullcontext, lib, seconds=60.0, max_items=2, clock=FakeClock())
    assert not batch.due()
    batch.flush()  # nothing queued: no commit
    assert batch.commits == 0
    batch.add(items[0])
    assert not batch.due()
    batch.add(items[1])
    assert batch.due()
    lib._close()
