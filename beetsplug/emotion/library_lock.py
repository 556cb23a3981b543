"""One ``beet emotion`` at a time per library: a lock file beside the database.

Two runs on one library would both pick the same unanalysed items, analyse them twice and
rewrite every file twice. The lock is an advisory ``flock`` on ``LIBRARY.emotion-lock``: the
kernel drops it when its holder exits, however it exits (kill -9 included), so a crashed run
never leaves a stale lock behind. The file's text (pid, start time) only serves the message
the second run prints.

Only runs that store or write take it; ``--pretend`` and ``--explain`` store nothing and
run beside anything.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are not serialised there
    fcntl = None  # type: ignore[assignment]

SUFFIX = ".emotion-lock"
POLL_SECONDS = 0.5


class LibraryBusy(Exception):
    """Another run holds the library; the message is one line saying who and what to do."""


def lock_path(database: str | bytes) -> Path | None:
    """Where the lock for ``database`` lives; None for an in-memory library."""
    name = os.fsdecode(database)
    if not name or name == ":memory:" or name.startswith("file::memory:"):
        return None
    return Path(name + SUFFIX)


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        return "another beet emotion"
    if len(text) >= 2 and text[0].isdigit():
        try:
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(text[1])))
        except (ValueError, OverflowError):
            return f"beet emotion (pid {text[0]})"
        return f"beet emotion (pid {text[0]}, since {since})"
    return "another beet emotion"


@contextlib.contextmanager
def hold(
    database: str | bytes,
    wait: bool = False,
    on_wait: Callable[[str], None] = lambda message: None,
    log: Callable[[str], None] = lambda message: None,
) -> Iterator[None]:
    """Hold the library's lock for the block.

    Raises ``LibraryBusy`` when another run holds it, unless ``wait``: then ``on_wait`` is
    told once and the call blocks until the other run ends. A lock file that cannot be
    created (a read-only folder) is logged and the run goes on unserialised: refusing would
    stop every run on such a library, and a database there is read-only anyway.
    """
    path = lock_path(database)
    if path is None or fcntl is None:
        yield
        return
    try:
        # A raw descriptor, written with os.write: a buffered file would flush again when it
        # is closed, and on a full disk that flush raised after the whole run was done.
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        log(f"{path}: cannot create the lock file ({error.strerror or error}); not locking")
        yield
        return
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(path)
            if not wait:
                raise LibraryBusy(
                    f"{holder} is already analysing this library ({path}); "
                    "wait for it to finish, or add --wait to start when it has"
                ) from None
            on_wait(f"emotion: waiting for {holder} to finish ...")
            while True:
                time.sleep(POLL_SECONDS)
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    continue
        # The text is only for the other run's message; the flock is what counts, so a full
        # disk (the write fails) changes nothing.
        with contextlib.suppress(OSError):
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, f"{os.getpid()} {time.time():.0f}\n".encode(), 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(descriptor, 0)
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)
