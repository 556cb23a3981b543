"""How many CPU threads the model's own work gets.

torch starts one thread per core and keeps them all spinning at each parallel step. When the
cores are shared (the decoding workers of this very run, another program, a second run), a
step waits for its slowest thread, and a thread the kernel has put aside waits a whole time
slice: on a loaded 2-core machine the default model took 4.6x longer with two threads than
with one. The automatic choice therefore counts the cores this process may use, takes off the
ones that are busy elsewhere when the model is loaded, and the decoding workers' share, and
never asks for more threads than that (docs/performance.md, "A busy machine").

Linux-only facts (CPU affinity, cgroup quota, ``/proc/stat``) are read when they exist;
elsewhere the count falls back to ``os.cpu_count()`` with nothing busy.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

MAX_THREADS = 256
ALLOWED = f"use auto or a whole number from 1 to {MAX_THREADS}"
SAMPLE_SECONDS = 0.25
"""How long the other programs' CPU use is watched before choosing (the model load takes
seconds, so a quarter of one is not noticed)."""
DECODE_SHARE = 0.5
"""The part of a core one decoding worker keeps busy while the model runs: decoding is 25-55 %
of a CPU run's time (default and fast model, docs/performance.md), so a worker is counted as
half a core."""


class ThreadsError(ValueError):
    """A thread count that cannot be used; the message is one line."""


def usable_cores(
    cgroup_cpu_max: Path = Path("/sys/fs/cgroup/cpu.max"),
) -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU quota
    (a container started with ``--cpus 2`` sees every core of the host but gets two)."""
    pinned = _affinity()
    cores = len(pinned) if pinned else (os.cpu_count() or 1)
    try:
        quota, period = cgroup_cpu_max.read_text().split()[:2]
        if quota != "max" and int(period) > 0:
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def _cpu_ticks(stat: Path, cpus: frozenset[int] | None = None) -> tuple[int, int, int] | None:
    """(busy ticks, total ticks, CPUs counted) since boot, from ``/proc/stat``: of the CPUs
    in ``cpus`` (their ``cpuN`` lines), else of all (the ``cpu`` line)."""
    try:
        lines = [line.split() for line in stat.read_text().splitlines()]
    except OSError:
        return None
    per_cpu = {f[0]: f[1:] for f in lines if f and f[0].startswith("cpu") and f[0][3:].isdigit()}
    rows = [per_cpu[f"cpu{n}"] for n in sorted(cpus or ()) if f"cpu{n}" in per_cpu]
    counted = len(rows)
    if not rows:
        rows = [f[1:] for f in lines[:1] if f[:1] == ["cpu"]]
        counted = os.cpu_count() or 1
    busy = total = 0
    for row in rows:
        try:
            ticks = [int(value) for value in row[:8]]
        except ValueError:
            return None
        if len(ticks) < 4:
            return None
        # user nice system idle iowait irq softirq steal (guest time is already in user).
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
        busy += sum(ticks) - idle
        total += sum(ticks)
    return (busy, total, counted) if rows else None


def _affinity() -> frozenset[int] | None:
    try:
        return frozenset(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def cores_busy_elsewhere(seconds: float = SAMPLE_SECONDS, stat: Path = Path("/proc/stat")) -> float:
    """Cores other programs kept busy over the next ``seconds`` on the CPUs this process may
    run on (a container pinned to 2 of 64 cores does not count the other 62), with this
    process's own CPU time taken off; 0.0 where ``/proc/stat`` does not exist."""
    cpus = _affinity()
    before = _cpu_ticks(stat, cpus)
    if before is None:
        return 0.0
    own_before = _own_cpu_seconds()
    started = time.monotonic()
    time.sleep(seconds)
    after = _cpu_ticks(stat, cpus)
    elapsed = time.monotonic() - started
    if after is None or after[1] <= before[1] or elapsed <= 0:
        return 0.0
    busy_fraction = (after[0] - before[0]) / (after[1] - before[1])
    own_cores = (_own_cpu_seconds() - own_before) / elapsed
    return max(0.0, busy_fraction * after[2] - own_cores)


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


_busy_seen: tuple[float, float] | None = None
"""(when, cores busy elsewhere): a process that loads several models in a minute (tests, a
comparison) watches once; load changes over minutes, not seconds."""
BUSY_REUSE_SECONDS = 60.0


def _recent_busy_elsewhere() -> float:
    global _busy_seen
    now = time.monotonic()
    if _busy_seen is None or now - _busy_seen[0] > BUSY_REUSE_SECONDS:
        _busy_seen = (now, cores_busy_elsewhere())
    return _busy_seen[1]


def default_threads(cores: int, workers: int, busy_elsewhere: float) -> int:
    """Threads that leave room for the decoding workers and for what else runs: the cores
    left after both (other programs' load rounded to whole cores), rounded half up, at least
    one.

    Half up because a worker's half core is an average: on a quiet 2-core machine with one
    worker, two threads ran the default model 21-28 % faster than one (the worker sleeps
    while the model runs), but once a whole core is busy elsewhere one thread is 2.2-3.4x
    faster than two (docs/performance.md, "A busy machine")."""
    # Other programs count in whole cores (0.3 of one is the shell, the kernel, a sampling
    # blip): with a fraction, 2 cores less one worker's half would sit on the rounding edge.
    free = cores - round(busy_elsewhere) - DECODE_SHARE * workers
    return max(1, min(cores, math.floor(free + 0.5 + 1e-9)))


def parse_threads(value: object) -> int | None:
    """'auto' (or None) -> None; a whole number from 1 to MAX_THREADS -> itself."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_THREADS:
        return value
    raise ThreadsError(f"threads {value!r}: {ALLOWED}")


def choose_threads(threads: int | None, workers: int, on_cpu: bool = True) -> tuple[int, str]:
    """The model's thread count and why: ``threads`` when given; else ``OMP_NUM_THREADS`` when
    the user set it (torch already obeys it); else :func:`default_threads` on the cores free
    now. On a GPU the CPU threads only feed it: all usable cores, as torch would."""
    if threads is not None:
        return threads, "asked for"
    user = os.environ.get("OMP_NUM_THREADS", "").strip()
    if user.isdigit() and int(user) >= 1:
        return min(int(user), MAX_THREADS), "OMP_NUM_THREADS"
    cores = usable_cores()
    if not on_cpu:
        return cores, "all cores (GPU)"
    busy = _recent_busy_elsewhere()
    chosen = default_threads(cores, workers, busy)
    return chosen, f"auto: {cores} cores, {busy:.1f} busy elsewhere, {workers} decoding worker(s)"
