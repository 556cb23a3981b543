"""`lgfn bench` reports each decoding worker's own peak memory, not its parent's."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from lgfn_model.cli.bench import ChildPeakRss


def _fake_process(
    proc: Path, pid: int, ppid: int, comm: str, hwm_kib: int, cmdline: bytes = b"python\0-c\0"
) -> None:
    folder = proc / str(pid)
    folder.mkdir()
    (folder / "cmdline").write_bytes(cmdline)
    (folder / "stat").write_text(f"{pid} ({comm}) S {ppid} 1 1 0 -1\n")
    (folder / "status").write_text(f"Name:\t{comm}\nVmPeak:\t999999 kB\nVmHWM:\t{hwm_kib} kB\n")


def test_only_children_count_and_names_with_spaces_parse(tmp_path: Path) -> None:
    _fake_process(tmp_path, 11, 7, "python (worker) 2", 80 * 1024)
    _fake_process(tmp_path, 12, 7, "python", 50 * 1024)
    _fake_process(tmp_path, 13, 99, "someone else", 900 * 1024)
    # forked, not yet exec'd: its memory is still the parent's
    _fake_process(tmp_path, 14, 7, "lgfn", 1200 * 1024, cmdline=b"lgfn\0bench\0")
    (tmp_path / "self").mkdir()  # not a pid: skipped
    watcher = ChildPeakRss(proc=tmp_path)
    watcher.sample("7", b"lgfn\0bench\0")
    assert watcher.peak_mib == 80.0


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_a_spawned_child_reports_its_own_peak_not_the_parents() -> None:
    ballast = bytearray(400 << 20)  # make this process clearly larger than its child
    ballast[::4096] = b"x" * len(ballast[::4096])
    parent_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = "import time; b = bytearray(64 << 20); b[::4096] = b'y' * len(b[::4096]); time.sleep(1)"
    with ChildPeakRss(interval=0.02) as watcher:
        subprocess.run([sys.executable, "-c", child], check=True)
    assert 64 <= watcher.peak_mib < parent_mib - 300
    del ballast
