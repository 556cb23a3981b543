"""An ordered, bounded, lazy thread-pool map (for network lyrics lookups)."""

from __future__ import annotations

import contextvars
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(
    func: Callable[[T], R], items: Iterable[T], threads: int, lookahead: int | None = None
) -> Iterator[R]:
    """``map(func, items)`` run ahead on ``threads`` threads, results in input order.

    At most ``lookahead`` calls (default ``2 * threads``) are in flight, so a long input is
    never submitted all at once; with ``threads <= 0`` it runs inline. Closing the iterator
    (or an exception) cancels what has not started.
    """
    if threads <= 0:
        for item in items:
            yield func(item)
        return
    limit = max(1, lookahead if lookahead is not None else 2 * threads)
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="emotion-lyrics")
    queue: deque[Future[R]] = deque()
    try:
        for item in items:
            # Each call runs in a copy of the caller's context: beets keeps the library
            # directory in a context variable, and without it an item's path read first in a
            # worker thread comes out relative ("file not found" for every track).
            queue.append(pool.submit(contextvars.copy_context().run, func, item))
            while len(queue) >= limit:
                yield queue.popleft().result()
        while queue:
            yield queue.popleft().result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
