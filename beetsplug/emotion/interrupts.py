"""Ctrl-C during a run: remembered when Python would drop it, held back around the steps that
must not be cut in two (writing a file's tags, storing its item)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def watch_interrupts() -> Iterator[Callable[[], bool]]:
    """Ctrl-C during a run raises KeyboardInterrupt at once, as usual, and is remembered too.

    Python drops an exception raised while a ``__del__`` method or a garbage-collector
    callback runs, so a Ctrl-C landing there would be lost; the run asks after each item.
    """
    seen: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        yield lambda: False  # someone else handles Ctrl-C: leave it to them
        return

    def handler(signum: int, frame: Any) -> None:
        seen.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(seen)
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def defer_interrupts() -> Iterator[None]:
    """Hold SIGINT (Ctrl-C) back until the block is done, then act on it.

    Around "write the file, store the item": a KeyboardInterrupt between the two, or inside
    mutagen's in-place rewrite of a file, would leave a half-updated item or a damaged file.
    Only the main thread can handle signals; elsewhere the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            if callable(previous):
                previous(signal.SIGINT, None)
            elif previous == signal.SIG_DFL:
                raise KeyboardInterrupt
