"""Keep large buffers in the C heap between batches (glibc only).

glibc's malloc serves every block above its mmap threshold (128 KiB growing to 32 MiB at
most) with a fresh ``mmap`` and hands it back on ``free``. A batch of 32 windows makes
spectrograms and activations of 20-50 MB each, so every forward pass mapped and unmapped
them, and the kernel zero-filled every page again on first touch: on this project's 2-core
virtual machine that page-faulting was nearly half of a fast-model forward pass and a tenth
of a default one (docs/performance.md, "Large buffers"). Raising the mmap and trim thresholds keeps
those blocks in the heap, where the next batch reuses the same, already mapped, pages. Peak
memory is unchanged (the next batch needs the same sizes); what changes is that the process
keeps its high-water mark instead of returning it to the system between batches.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

__all__ = ["HEAP_THRESHOLD_BYTES", "keep_large_buffers_in_heap"]

_log = logging.getLogger(__name__)

HEAP_THRESHOLD_BYTES = 256 << 20
"""Blocks up to this size come from the heap, and up to this much freed memory at its top is
kept: above the largest tensor a CPU batch makes, far below the 2 GiB memory budget."""

# mallopt(3) parameters, from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

_done: bool | None = None


def keep_large_buffers_in_heap() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; True if they are raised.

    Does nothing (False) off Linux or with another C library, and when the user set either
    threshold themselves (``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_``: theirs wins).
    """
    global _done
    if _done is not None:
        return _done
    _done = False
    if not sys.platform.startswith("linux"):
        return False
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _done = bool(
        mallopt(_M_MMAP_THRESHOLD, HEAP_THRESHOLD_BYTES)
        and mallopt(_M_TRIM_THRESHOLD, HEAP_THRESHOLD_BYTES)
    )
    _log.debug("glibc mmap/trim thresholds raised to %d bytes: %s", HEAP_THRESHOLD_BYTES, _done)
    return _done
