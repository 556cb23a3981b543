"""One storing ``beet emotion`` per library: a second run says so and changes nothing, or
waits with ``--wait``; the lock goes with its holder, kill -9 included."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from beets import ui

from beetsplug.emotion import library_lock

from .conftest import BeetsEnv
from .test_subprocess import BEET, _config

pytestmark = pytest.mark.skipif(library_lock.fcntl is None, reason="flock is POSIX-only")


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(os.fsdecode(path)).read_bytes()).hexdigest()


def _two_tracks(env: BeetsEnv) -> list[Path]:
    paths = [env.make_track(f"t{n}.flac", title=f"T{n}", folder=env.music) for n in range(2)]
    env.add(*paths)
    return paths


def test_second_run_is_refused_and_changes_nothing(env: BeetsEnv) -> None:
    paths = _two_tracks(env)
    before = [_sha(p) for p in paths]
    database = env.root / "library.db"
    with library_lock.hold(str(database)), pytest.raises(ui.UserError) as raised:
        env.run("emotion", "-w")
    message = str(raised.value)
    assert "already analysing this library" in message
    assert f"pid {os.getpid()}" in message and "--wait" in message
    assert "\n" not in message
    assert all(not item.get("emotion_model") for item in env.items())
    assert [_sha(p) for p in paths] == before
    # Released: the next run does the work.
    env.run("emotion", "-w")
    assert all(item.get("emotion_model") for item in env.items())


def test_pretend_needs_no_lock(env: BeetsEnv) -> None:
    _two_tracks(env)
    with library_lock.hold(str(env.root / "library.db")):
        out = env.run("emotion", "-p")
    assert "would tag 2" in out
    assert all(not item.get("emotion_model") for item in env.items())


def test_wait_starts_when_the_other_run_ends(env: BeetsEnv) -> None:
    _two_tracks(env)
    release = threading.Event()
    held = threading.Event()

    def other_run() -> None:
        with library_lock.hold(str(env.root / "library.db")):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=other_run)
    holder.start()
    held.wait(5)
    timer = threading.Timer(1.0, release.set)
    timer.start()
    started = time.monotonic()
    try:
        out = env.run("emotion", "-w", "--wait")
    finally:
        release.set()
        holder.join()
    assert time.monotonic() - started >= 0.9
    assert "waiting for beet emotion (pid" in out
    assert "tagged 2" in out
    assert all(item.get("emotion_model") for item in env.items())


def test_lock_file_in_a_read_only_folder_does_not_stop_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logged: list[str] = []
    real_open = os.open

    def refusing_open(file: str, *args: int) -> int:
        if str(file).endswith(library_lock.SUFFIX):
            raise PermissionError(13, "Permission denied")
        return real_open(file, *args)

    monkeypatch.setattr(library_lock.os, "open", refusing_open)
    ran = False
    with library_lock.hold(str(tmp_path / "library.db"), log=logged.append):
        ran = True
    assert ran
    assert logged and "cannot create the lock file (Permission denied); not locking" in logged[0]


def test_a_full_disk_does_not_break_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pid text cannot be written (ENOSPC): the flock still holds, nothing raises."""
    import errno

    def full(*args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(library_lock.os, "pwrite", full)
    database = str(tmp_path / "library.db")
    with library_lock.hold(database):
        with pytest.raises(library_lock.LibraryBusy) as busy, library_lock.hold(database):
            pass
        assert "another beet emotion is already analysing" in str(busy.value)


def test_in_memory_library_is_not_locked() -> None:
    assert library_lock.lock_path(":memory:") is None
    with library_lock.hold(":memory:"):
        pass


def _library(root: Path, tracks: int) -> None:
    from audio_factory import make_audio_file
    from beets.library import Item, Library

    music = root / "music"
    music.mkdir()
    library = Library(str(root / "library.db"), str(music))
    for n in range(tracks):
        path = make_audio_file(music / f"s{n}.flac", seconds=3.0)
        item = Item.from_path(str(path))
        item.title = f"S{n}"
        library.add(item)
    library._close()


def _beet(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BEET), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def test_two_real_runs_at_once_do_the_work_once(tmp_path: Path, tiny_checkpoint: Path) -> None:
    environ = _config(tmp_path, tiny_checkpoint)
    _library(tmp_path, 4)
    first = _beet(environ, "emotion", "-w")
    # The second starts once the first holds the lock (its text names the holder's pid).
    lock = Path(str(tmp_path / "library.db") + library_lock.SUFFIX)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (lock.exists() and lock.read_text().strip()):
        time.sleep(0.05)
    second = _beet(environ, "emotion", "-w")
    out2, err2 = second.communicate(timeout=120)
    out1, err1 = first.communicate(timeout=120)
    assert first.returncode == 0, err1
    assert "tagged 4" in out1
    assert second.returncode != 0
    lines = [line for line in err2.splitlines() if line.strip()]
    assert len(lines) == 1 and "already analysing this library" in lines[0], err2
    assert "Traceback" not in out2 + err2
    assert f"pid {first.pid}" in lines[0]


def test_kill_9_releases_the_lock(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """A crashed run leaves no stale lock: the kernel drops the flock with the process."""
    database = tmp_path / "library.db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from beetsplug.emotion import library_lock\n"
            "with library_lock.hold(sys.argv[1]):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(60)\n",
            str(database),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(library_lock.LibraryBusy), library_lock.hold(str(database)):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    with library_lock.hold(str(database)):
        pass
