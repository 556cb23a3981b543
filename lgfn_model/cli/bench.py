"""`lgfn bench`: how fast whole-track analysis runs here, and where the time goes.

Runs the real predictor over the given files (with the `.lrc`/`.txt` beside each, if any),
after a warm-up, and in the same run measures the decode-only floor (the same files decoded
by the same number of worker processes, nothing else), so the two can be compared fairly.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from lgfn_model.cli.common import add_predictor_options, load_predictor
from lgfn_model.data.lyrics import Lyrics, read_lyrics_file


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "bench",
        help="measure prediction speed and memory on audio files",
        description="Time whole-track prediction per stage, with the decode-only floor.",
    )
    parser.add_argument("files", nargs="+", help="audio files (lyrics beside them are used)")
    parser.add_argument("--repeat", type=int, default=1, help="pass over the files N times")
    parser.add_argument("--no-lyrics", action="store_true", help="ignore lyrics beside files")
    parser.add_argument("--json-out", help="also write the JSON line to this file")
    add_predictor_options(parser)
    parser.set_defaults(handler=run_bench)


def lyrics_beside(audio: Path) -> Lyrics | None:
    for suffix in (".lrc", ".txt"):
        candidate = audio.with_suffix(suffix)
        if candidate.is_file():
            return read_lyrics_file(str(candidate))
    return None


def _decode_only(path: Path, rate: int) -> float:
    from lgfn_model.data.audio import decode_audio

    return decode_audio(path, rate).duration


def decode_floor(files: list[Path], rate: int, workers: int) -> float:
    """Wall seconds to decode ``files`` with ``workers`` processes (0: inline)."""
    started = time.perf_counter()
    if workers == 0:
        for path in files:
            _decode_only(path, rate)
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            list(pool.map(_decode_only, files, [rate] * len(files)))
    return time.perf_counter() - started


def _cpu_seconds() -> tuple[float, float]:
    """(this process, its exited child processes) user + system CPU seconds."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class ChildPeakRss:
    """The largest peak RSS (MiB) of this process's child processes while it runs.

    Not ``RUSAGE_CHILDREN``: Linux carries a process's peak across ``exec``, so a spawned
    worker reports the RSS its parent had when it started it (the whole model), not its own.
    ``VmHWM`` in ``/proc/<pid>/status`` is the peak of the worker's own address space; it is
    read every ``interval`` seconds while the worker lives. Without ``/proc`` it stays 0.
    """

    def __init__(self, interval: float = 0.05, proc: Path = Path("/proc")) -> None:
        self.interval, self.proc = interval, proc
        self.peak_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="lgfn-rss", daemon=True)

    def __enter__(self) -> ChildPeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        parent = str(os.getpid())
        try:
            own_cmdline = Path(self.proc, parent, "cmdline").read_bytes()
        except OSError:
            return
        while True:
            self.sample(parent, own_cmdline)
            if self._stop.wait(self.interval):
                return

    def sample(self, parent: str, own_cmdline: bytes) -> None:
        """One look at the children of ``parent``. A child whose command line is still its
        parent's has not reached ``exec`` yet: it shares or copies the parent's memory, and its
        peak would be the parent's, so it is skipped (its command line is read first: once it
        differs, the status read after it is the worker's own)."""
        try:
            entries = [e for e in os.scandir(self.proc) if e.name.isdigit()]
        except OSError:
            return
        for entry in entries:
            try:
                # /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces.
                stat = Path(entry.path, "stat").read_text()
                if stat.rpartition(")")[2].split()[1] != parent:
                    continue
                if Path(entry.path, "cmdline").read_bytes() == own_cmdline:
                    continue
                status = Path(entry.path, "status").read_text()
            except (OSError, IndexError):
                continue  # the process ended meanwhile
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_mib = max(self.peak_mib, int(line.split()[1]) / 1024)


def run_bench(args: argparse.Namespace) -> int:
    import torch

    from lgfn_model.runtime import device as device_module
    from lgfn_model.runtime.predictor import TrackInput

    files = [Path(f) for f in args.files] * max(1, args.repeat)
    started = time.perf_counter()
    predictor = load_predictor(args)
    lyrics = {p: (None if args.no_lyrics else lyrics_beside(p)) for p in set(files)}
    if any(lyrics.values()):
        predictor.text_encoder  # noqa: B018 - load it now, so it counts as model load
    load_s = time.perf_counter() - started
    device = predictor.device

    # Warm-up on one file: first-call costs (kernels, allocator) are not per-track costs.
    predictor.predict(files[0], lyrics[files[0]])
    predictor.stats = type(predictor.stats)()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()

    with ChildPeakRss() as workers_rss:
        started, cpu_started = time.perf_counter(), _cpu_seconds()
        results = list(predictor.predict_many(TrackInput(p, lyrics[p]) for p in files))
        if device.type == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - started
    cpu = [after - before for before, after in zip(cpu_started, _cpu_seconds(), strict=True)]
    stats = predictor.stats
    failed = [r.error for r in results if r.error]

    features_s = (
        _time_features(predictor, files[: min(len(files), 10)]) * len(files) / min(len(files), 10)
    )
    floor = decode_floor(files, predictor.config.audio.sample_rate, predictor.workers)
    own_mib = _peak_rss_mib()
    record: dict[str, Any] = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else device_module.cpu_description(),
        "model": predictor.version,
        "precision": str(predictor.dtype).removeprefix("torch."),
        "text_precision": predictor.text_precision,
        "tracks": len(files),
        "failed": len(failed),
        "audio_minutes": round(stats.audio_seconds / 60, 2),
        "workers": predictor.workers,
        "threads": predictor.threads,
        "threads_reason": predictor.threads_reason,
        "batch_size": predictor.batch_size,
        "load_s": round(load_s, 3),
        "wall_s": round(wall, 3),
        "s_per_track": round(wall / len(files), 4),
        "tracks_per_s": round(len(files) / wall, 2),
        # CPU seconds (all threads; decode workers once they have exited): unlike wall time,
        # hardly changed by other programs sharing the machine.
        "cpu_s_per_track": round(sum(cpu) / len(files), 4),
        "cpu_s_per_track_workers": round(cpu[1] / len(files), 4),
        "decode_floor_s_per_track": round(floor / len(files), 4),
        "x_decode_floor": round(wall / floor, 2) if floor else None,
        "stage_s": {
            "decode_in_workers": round(stats.decode_s, 3),
            "features_logmel": round(features_s, 3),
            "text": round(stats.text_s, 3),
            "model_incl_features": round(stats.model_s, 3),
        },
        "peak_rss_mib": round(own_mib, 1),
        # each decoding worker's own peak (the largest of them), measured while predicting
        "peak_rss_worker_mib": round(workers_rss.peak_mib, 1),
    }
    if device.type == "cuda":
        record["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        record["gpu_share"] = round(stats.model_s / wall, 3)
    _print_table(record, failed)
    line = json.dumps(record)
    print(line)
    if args.json_out:
        Path(args.json_out).write_text(line + "\n")
    return 1 if failed else 0


def _time_features(predictor: Any, files: list[Path]) -> float:
    """Seconds spent on log-mel alone for ``files`` (decoded again, not timed)."""
    import torch

    from lgfn_model.data.audio import decode_audio
    from lgfn_model.data.windows import cut_windows

    total = 0.0
    for path in files:
        samples = decode_audio(path, predictor.config.audio.sample_rate).samples
        windows, _ = cut_windows(samples, predictor.config.audio)
        with torch.inference_mode():
            batch = torch.from_numpy(windows).to(predictor.device)
            started = time.perf_counter()
            predictor.model.log_mel(batch)
            if predictor.device.type == "cuda":
                torch.cuda.synchronize()
            total += time.perf_counter() - started
    return total


def _print_table(record: dict[str, Any], failed: list[str | None]) -> None:
    rows = [
        ("device", f"{record['device']} ({record['device_name']})"),
        ("model", f"{record['model']} ({record['precision']}, lyrics {record['text_precision']})"),
        ("tracks", f"{record['tracks']} ({record['audio_minutes']} min of audio)"),
        ("threads", f"{record['threads']} ({record['threads_reason']})"),
        ("model load", f"{record['load_s']:.2f} s (excluded below)"),
        ("wall time", f"{record['wall_s']:.2f} s"),
        ("per track", f"{record['s_per_track']:.3f} s"),
        ("tracks/s", f"{record['tracks_per_s']:.2f}"),
        (
            "CPU time per track",
            f"{record['cpu_s_per_track']:.3f} s "
            f"(of which decode workers {record['cpu_s_per_track_workers']:.3f} s)",
        ),
        ("decode-only floor", f"{record['decode_floor_s_per_track']:.3f} s/track"),
        ("vs decode floor", f"{record['x_decode_floor']}x"),
    ]
    wall = record["wall_s"]
    for stage, seconds in record["stage_s"].items():
        rows.append((f"  {stage}", f"{seconds:.2f} s ({100 * seconds / wall:.0f}% of wall)"))
    rss = f"{record['peak_rss_mib']:.0f} MiB"
    if record["workers"]:
        worker = record["peak_rss_worker_mib"]
        rss += f" (+ {record['workers']} decoding worker(s), at most {worker:.0f} MiB each)"
    rows.append(("peak RSS", rss))
    if "peak_gpu_mib" in record:
        rows.append(("peak GPU memory", f"{record['peak_gpu_mib']:.0f} MiB"))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}", file=sys.stdout)
    for error in failed:
        print(f"failed: {error}", file=sys.stderr)
