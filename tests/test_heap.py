"""Large buffers stay in glibc's heap between batches instead of being mapped afresh."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import lgfn_model.runtime.heap as heap

# A 64 MiB buffer made and freed: where glibc put it (mallinfo2: bytes in mmapped blocks while
# it lives; free bytes kept in the heap after it is gone).
_WHERE_THE_BUFFER_LIVES = """
import ctypes, json, sys
import numpy as np

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "tuned":
    from lgfn_model.runtime.heap import keep_large_buffers_in_heap
    assert keep_large_buffers_in_heap()
buffer = np.ones(16 << 20, dtype=np.float32)
mapped = libc.mallinfo2().hblkhd
del buffer
kept = libc.mallinfo2().fordblks
print(json.dumps({"mapped": mapped, "kept": kept}))
"""


def _glibc() -> bool:
    import platform

    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    import ctypes

    return hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2")  # glibc 2.33 and later


@pytest.mark.skipif(not _glibc(), reason="glibc's mallopt only")
def test_a_large_buffer_lives_in_the_heap_and_its_pages_are_kept() -> None:
    def where(mode: str) -> dict[str, int]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
        run = subprocess.run(
            [sys.executable, "-c", _WHERE_THE_BUFFER_LIVES, mode],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        return json.loads(run.stdout)

    size = 64 << 20
    default, tuned = where("default"), where("tuned")
    assert default["mapped"] >= size and default["kept"] < size  # mapped, then given back
    assert tuned["mapped"] < size and tuned["kept"] >= size  # in the heap, kept for reuse


def test_the_users_own_malloc_settings_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "_done", None)
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert heap.keep_large_buffers_in_heap() is False
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    assert heap.keep_large_buffers_in_heap() is False  # decided once per process


@pytest.mark.skipif(not _glibc(), reason="glibc's mallopt only")
def test_tuning_applies_once_and_reports_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "_done", None)
    for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        monkeypatch.delenv(name, raising=False)
    assert heap.keep_large_buffers_in_heap() is True
    assert heap.keep_large_buffers_in_heap() is True
