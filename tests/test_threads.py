"""The model's CPU thread count: asked for, OMP_NUM_THREADS, or chosen from the cores free."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from audio_factory import make_audio_file

from lgfn_model.cli import build_parser, main
from lgfn_model.runtime import threads
from lgfn_model.runtime.checkpoint import load_checkpoint
from lgfn_model.runtime.predictor import Predictor
from lgfn_model.testing import write_tiny_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny")


@pytest.mark.parametrize(
    ("cores", "workers", "busy", "expected"),
    [
        (2, 1, 0.0, 2),  # a decoding worker takes half a core: 1.5 free -> 2 threads
        (2, 1, 1.0, 1),  # one core busy elsewhere: 0.5 free -> 1 thread
        (2, 1, 0.6, 1),
        (2, 1, 0.2, 2),  # a little noise elsewhere does not tip it
        (2, 0, 0.0, 2),
        (4, 1, 0.0, 4),
        (8, 3, 0.0, 7),
        (2, 1, 3.0, 1),  # never below one
        (16, 1, 6.4, 10),
        (4, 0, 0.9, 3),
    ],
)
def test_default_leaves_room_for_workers_and_other_programs(
    cores: int, workers: int, busy: float, expected: int
) -> None:
    assert threads.default_threads(cores, workers, busy) == expected


@pytest.mark.parametrize(("value", "expected"), [("auto", None), (None, None), ("3", 3), (1, 1)])
def test_parse_accepts_auto_and_whole_numbers(value: object, expected: int | None) -> None:
    assert threads.parse_threads(value) == expected


@pytest.mark.parametrize("value", [0, -2, "many", 1.5, True, 257])
def test_parse_refuses_the_rest_in_one_line(value: object) -> None:
    with pytest.raises(threads.ThreadsError, match=r"use auto or a whole number from 1 to 256"):
        threads.parse_threads(value)


def test_asked_for_wins_then_omp_num_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.choose_threads(2, workers=1) == (2, "asked for")
    assert threads.choose_threads(None, workers=1) == (3, "OMP_NUM_THREADS")
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(threads, "_busy_seen", (time.monotonic(), 0.0))
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    chosen, why = threads.choose_threads(None, workers=1)
    assert chosen == 4 and why.startswith("auto: 4 cores, 0.0 busy elsewhere, 1 decoding")
    assert threads.choose_threads(None, workers=1, on_cpu=False) == (4, "all cores (GPU)")


def test_a_cgroup_quota_caps_the_cores(tmp_path: Path) -> None:
    quota = tmp_path / "cpu.max"
    quota.write_text("100000 100000\n")
    assert threads.usable_cores(quota) == 1
    quota.write_text("max 100000\n")
    assert threads.usable_cores(quota) >= 1
    assert threads.usable_cores(tmp_path / "absent") >= 1


def test_another_program_spinning_is_seen_as_busy() -> None:
    if not Path("/proc/stat").exists():
        pytest.skip("needs Linux /proc/stat")
    quiet = threads.cores_busy_elsewhere(0.3)
    if quiet > (os.cpu_count() or 1) - 1:
        # Every core is busy already: one more spinner cannot show (the count saturates).
        pytest.skip(f"no idle core to see a spinner on ({quiet:.1f} cores busy elsewhere)")
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # let it start
        busy = threads.cores_busy_elsewhere(0.5)
    finally:
        spinner.kill()
        spinner.wait()
    assert busy >= quiet + 0.5, (quiet, busy)


def test_this_process_spinning_is_not_counted() -> None:
    if not Path("/proc/stat").exists():
        pytest.skip("needs Linux /proc/stat")
    before = threads._cpu_ticks(Path("/proc/stat"))
    assert before is not None
    started = time.monotonic()
    own = threads._own_cpu_seconds()
    # Spin until 0.2 s of our own CPU time (a busy machine gives us less than the wall clock).
    while threads._own_cpu_seconds() - own <= 0.2 and time.monotonic() - started < 10:
        pass
    assert threads._own_cpu_seconds() - own > 0.2  # the clock we take off does move


def test_predictor_sets_torch_to_the_chosen_count(checkpoint: Path) -> None:
    previous = torch.get_num_threads()
    cpu = torch.device("cpu")
    try:
        predictor = Predictor(load_checkpoint(checkpoint), cpu, workers=0, threads=1)
        assert predictor.threads == 1 and torch.get_num_threads() == 1
        assert not predictor.overlap_text  # one thread leaves none to share with the lyrics
        predictor = Predictor(load_checkpoint(checkpoint), cpu, workers=0, threads=2)
        assert torch.get_num_threads() == 2 and predictor.overlap_text
    finally:
        torch.set_num_threads(previous)


def test_lgfn_threads_option() -> None:
    parser = build_parser()
    assert parser.parse_args(["predict", "a.mp3", "--threads", "2"]).threads == 2
    assert parser.parse_args(["predict", "a.mp3", "--threads", "auto"]).threads is None
    done = subprocess.run(
        [sys.executable, "-m", "lgfn_model.cli", "predict", "a.mp3", "--threads", "0"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "argument --threads: 0: use auto or a whole number from 1 to 256" in done.stderr


def test_bench_reports_the_threads(tmp_path: Path, checkpoint: Path, capsys) -> None:  # noqa: ANN001
    song = make_audio_file(tmp_path / "song.flac", seconds=3.0, kind="chord")
    previous = torch.get_num_threads()
    try:
        code = main(
            ["bench", str(song), "--checkpoint", str(checkpoint), "--workers", "0"]
            + ["--device", "cpu", "--threads", "1"]
        )
    finally:
        torch.set_num_threads(previous)
    assert code == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["threads"] == 1 and record["threads_reason"] == "asked for"


def test_only_the_cpus_this_process_may_use_are_counted(tmp_path: Path) -> None:
    # Two CPUs of four usable; cpu2 and cpu3 (busy, not ours) must not count.
    stat = tmp_path / "stat"
    stat.write_text(
        "cpu  400 0 0 400 0 0 0 0 0 0\n"
        "cpu0 50 0 0 50 0 0 0 0 0 0\n"
        "cpu1 50 0 0 50 0 0 0 0 0 0\n"
        "cpu2 150 0 0 150 0 0 0 0 0 0\n"
        "cpu3 150 0 0 150 0 0 0 0 0 0\n"
    )
    assert threads._cpu_ticks(stat, frozenset({0, 1})) == (100, 200, 2)
    assert threads._cpu_ticks(stat, frozenset({7})) == (400, 800, os.cpu_count() or 1)
    assert threads._cpu_ticks(tmp_path / "missing") is None
