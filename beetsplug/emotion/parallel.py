"""An ordered, bounded, lazy thread-pool map (for network lyrics lookups)."""

from __future__ import annotations

import contextvars
import functools
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_Job = tuple[Future[Any], Callable[[], Any]]


def _work(jobs: queue.SimpleQueue[_Job | None], stop: threading.Event) -> None:
    while True:
        job = jobs.get()
        if job is None or stop.is_set():
            return
        future, call = job
        if not future.set_running_or_notify_cancel():
            continue  # cancelled before it started
        try:
            result = call()
        except BaseException as error:  # handed to the caller, as a pool would
            future.set_exception(error)
        else:
            future.set_result(result)


def ordered_map(
    func: Callable[[T], R], items: Iterable[T], threads: int, lookahead: int | None = None
) -> Iterator[R]:
    """``map(func, items)`` run ahead on ``threads`` threads, results in input order.

    At most ``lookahead`` calls (default ``2 * threads``) are in flight, so a long input is
    never submitted all at once; with ``threads <= 0`` it runs inline. Closing the iterator
    (or an exception) cancels what has not started.

    The threads are daemon threads of its own, not a ``ThreadPoolExecutor``'s: Python joins
    an executor's threads at exit, so one lookup stuck on a slow server kept the process
    alive after Ctrl-C had printed the summary. A call still running when the iterator is
    closed finishes (or not) on its own; nothing waits for it, and the process can exit.
    """
    if threads <= 0:
        for item in items:
            yield func(item)
        return
    limit = max(1, lookahead if lookahead is not None else 2 * threads)
    jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
    stop = threading.Event()
    workers: list[threading.Thread] = []
    pending: deque[Future[R]] = deque()
    try:
        for item in items:
            if len(workers) < threads:  # started as needed: one item needs one thread
                worker = threading.Thread(
                    target=_work,
                    args=(jobs, stop),
                    name=f"emotion-lyrics_{len(workers)}",
                    daemon=True,
                )
                worker.start()
                workers.append(worker)
            future: Future[R] = Future()
            # Each call runs in a copy of the caller's context: beets keeps the library
            # directory in a context variable, and without it an item's path read first in a
            # worker thread comes out relative ("file not found" for every track).
            call = functools.partial(contextvars.copy_context().run, func, item)
            jobs.put((future, call))
            pending.append(future)
            while len(pending) >= limit:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        stop.set()
        for future in pending:
            future.cancel()
        for _ in workers:
            jobs.put(None)
