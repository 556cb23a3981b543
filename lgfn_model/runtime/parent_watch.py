"""Worker processes that end with their parent, even when it dies by kill -9.

A ``ProcessPoolExecutor`` worker whose parent is killed stays blocked for ever on its task
queue: it holds that pipe's write end itself, so it never reads EOF. And the
``multiprocessing`` resource tracker, which exits when every holder of its pipe has closed
it, stays with it. ``end_with_parent`` is the pool's initializer that prevents both.

This module imports nothing heavy (no torch): a worker unpickles its initializer before it
runs it, and the decoding workers never need torch.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from typing import Any

_PR_SET_PDEATHSIG = 1


class SpawnedOnMainThread:
    """Pickles as True when pickled on the main thread, else False.

    A worker's ``initargs`` are pickled in the thread that starts it (``Process.start``,
    from ``submit``), so this tells the worker which thread forked it. That matters for
    PR_SET_PDEATHSIG, which fires when the forking *thread* ends, not the process: a pool
    driven from a short-lived thread would lose its workers with that thread.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (bool, (threading.current_thread() is threading.main_thread(),))


def end_with_parent(parent: int, on_main_thread: bool) -> None:
    """Pool initializer: end this worker when process ``parent`` (its creator) dies.

    Two ways, because each alone has a gap. On Linux, when the main thread forked it, the
    kernel sends SIGKILL at the parent's death (PR_SET_PDEATHSIG): that works even while
    the worker is deep in native decoding code holding the GIL. Everywhere, a daemon thread
    waits on multiprocessing's parent sentinel (a pipe that reads EOF, or on Windows a
    process handle that signals, once the parent is gone) and exits the worker.
    """
    if on_main_thread and sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no prctl: the sentinel thread below still ends the worker
    if os.getppid() != parent:  # it died while this worker started (before the arming)
        os._exit(1)
    threading.Thread(
        target=_exit_when_parent_ends, args=(parent,), name="parent-watch", daemon=True
    ).start()


def _exit_when_parent_ends(parent: int) -> None:
    process = multiprocessing.parent_process()
    if process is not None:
        process.join()  # returns once the sentinel is ready: the parent has exited
    else:  # not started by multiprocessing: poll the parent pid (it changes on reparenting)
        while os.getppid() == parent:
            time.sleep(0.5)
    os._exit(1)
