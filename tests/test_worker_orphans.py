"""Decoding workers die with their parent: a real kill -9 of a process running the Predictor
(workers >= 1) leaves nothing of its session running, whichever thread made the pool; and a
pool made from a thread that then ends keeps working (PR_SET_PDEATHSIG fires when the
*thread* that forked a worker ends, so it must not be armed there)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from contextlib import suppress
from pathlib import Path

import pytest
from audio_factory import make_audio_file

from lgfn_model.testing import write_tiny_checkpoint

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads the process table from /proc"
)

# Runs the Predictor over the same files again and again (it never ends by itself), from
# the main thread or from another one; prints "done" per track and "spawned" once the first
# result is in (the pool and its workers exist by then).
SCRIPT = textwrap.dedent(
    """\
    import sys, threading
    from pathlib import Path
    from lgfn_model.runtime.predictor import Predictor, TrackInput

    def main():
        checkpoint, how, *files = sys.argv[1:]
        predictor = Predictor.load(checkpoint, device="cpu", workers=2, batch_size=8)
        limit = 10**6 if how != "thread-ends" else 2 * len(files)
        inputs = (TrackInput(Path(files[n % len(files)]), None, n) for n in range(limit))
        results = predictor.predict_many(inputs)
        if how == "main":
            first = next(results)
        else:  # the pool is made (and its workers forked) by a thread that then ends
            box = []
            thread = threading.Thread(target=lambda: box.append(next(results)))
            thread.start()
            thread.join()
            first = box[0]
        print("spawned", flush=True)
        failed = int(first.error is not None)
        for result in results:
            failed += result.error is not None
            print("done", result.input.key, flush=True)
        print("failed", failed, flush=True)

    if __name__ == "__main__":
        main()
    """
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[Path]]:
    root = tmp_path_factory.mktemp("orphans")
    checkpoint = write_tiny_checkpoint(root / "tiny")
    files = [make_audio_file(root / f"t{n}.flac", seconds=6.0, kind="noise") for n in range(4)]
    script = root / "run.py"
    script.write_text(SCRIPT)
    return script, checkpoint, files


def _session(leader: int) -> list[tuple[int, str, str]]:
    """(pid, state, command line) of the live processes of ``leader``'s session."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, session = fields[0], int(fields[3])
        if session == leader and state != "Z":
            found.append((int(entry.name), state, command.strip()))
    return found


def _start(setup: tuple[Path, Path, list[Path]], how: str) -> subprocess.Popen[str]:
    script, checkpoint, files = setup
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), *sys.path])}
    return subprocess.Popen(
        [sys.executable, str(script), str(checkpoint), how, *map(str, files)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own session and group, as a job started from a shell
    )


@pytest.mark.parametrize("how", ["main", "thread"])
def test_kill_9_leaves_no_worker_behind(setup: tuple[Path, Path, list[Path]], how: str) -> None:
    process = _start(setup, how)
    try:
        assert process.stdout is not None and process.stderr is not None
        for line in process.stdout:
            if line.startswith("done"):
                break
        else:
            pytest.fail(f"the run ended early: {process.stderr.read()[-2000:]}")
        before = _session(process.pid)
        workers = [p for p in before if "spawn_main" in p[2]]
        assert len(workers) == 2, before  # the decoding workers, mid-run
        assert any("resource_tracker" in p[2] for p in before), before
        process.kill()  # SIGKILL to the leader alone, as the OOM killer or kill -9 would
        process.wait()
        deadline = time.monotonic() + 3.0
        while (left := _session(process.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert left == [], f"still running 3 s after kill -9: {left}"
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


def test_pool_made_by_an_ended_thread_keeps_its_workers(
    setup: tuple[Path, Path, list[Path]],
) -> None:
    process = _start(setup, "thread-ends")
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-2000:]
    assert "failed 0" in out, out[-2000:]
    assert out.count("done") == 2 * len(setup[2]) - 1
