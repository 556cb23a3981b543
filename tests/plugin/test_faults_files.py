"""Fault suite, files: broken, odd and unwritable files in a real library, through ``beet
emotion``. Each bad file costs one clear line and nothing else; every item ends either fully
updated (database and file agree) or untouched (no values, file bytes unchanged)."""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mutagen
import pytest
from audio_factory import make_audio_file

from beetsplug.emotion import fields
from beetsplug.emotion.interrupts import defer_interrupts
from tools import fault_catalogue as catalogue

from .conftest import TEST_MODEL_VERSION, BeetsEnv


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _file_mood(path: Path) -> str | None:
    tags = mutagen.File(os.fsdecode(path)).tags
    if tags is None:
        return None
    if hasattr(tags, "getall"):  # TMOO (ID3v2.4) or TXXX:MOOD (v2.3)
        frames = tags.getall("TMOO") + tags.getall("TXXX:MOOD")
        return str(frames[0].text[0]) if frames else None
    return str(tags["MOOD"][0]) if "MOOD" in tags else None


def _by_name(env: BeetsEnv) -> dict[str, Any]:
    return {Path(os.fsdecode(item.path)).name: item for item in env.items()}


# (file name, how to break it after it is in the library, words the failure line must hold)
BROKEN: list[tuple[str, Any, str]] = [
    ("cut.m4a", lambda p: catalogue.truncate(p, 0.5), "damaged or truncated"),
    ("empty.mp3", lambda p: p.write_bytes(b""), "file is empty (0 bytes)"),
    ("notes.mp3", lambda p: p.write_text("not music\n" * 100), "not an audio file"),
    ("gone.flac", lambda p: p.unlink(), "file not found"),
]
# (file name, sample rate, channels, seconds, kind): odd but valid audio, must be tagged.
ODD: list[tuple[str, int, int, float, str]] = [
    ("8k-mono.wav", 8000, 1, 3.0, "chord"),
    ("192k.flac", 192000, 2, 2.0, "chord"),
    ("six.flac", 48000, 6, 2.0, "noise"),
    ("eight.wav", 44100, 8, 2.0, "tone"),
    ("short.flac", 44100, 2, 0.3, "tone"),
    ("silent.flac", 44100, 2, 5.0, "silence"),
]


def test_bad_and_odd_files_in_one_run(env: BeetsEnv) -> None:
    # Files inside the library folder (beets stores their paths relative to it).
    for name, rate, channels, seconds, kind in ODD:
        path = make_audio_file(
            env.music / name, seconds=seconds, sample_rate=rate, channels=channels, kind=kind
        )
        env.add(path)
    for name, _, _ in BROKEN:
        env.add(env.make_track(name, seconds=4.0, folder=env.music))
    video = catalogue.video_only(env.music / "video.mp4")
    truncated = env.make_track("half.mp3", seconds=12.0, folder=env.music)
    env.add(truncated)
    from beets.library import Item

    env.lib.add(Item(path=str(video), title="video"))
    for name, breaks, _ in BROKEN:
        breaks(env.music / name)
    catalogue.truncate(truncated, 0.5)
    before = {path.name: _digest(path) for path in env.music.iterdir()}
    before["gone.flac"] = None

    out = env.run_failing("emotion", "-w")

    odd = len(ODD) + 1  # the truncated MP3 is analysed from the part that decodes
    assert f"tagged {odd}, skipped 0, failed {len(BROKEN) + 1}" in out
    lines = [line.strip() for line in out.splitlines()]
    for name, _, reason in [*BROKEN, ("video.mp4", None, "no audio stream")]:
        path = env.music / name
        mine = [line for line in lines if str(path) in line]
        assert mine == [f"failed: {path}: {mine[0].split(': ', 2)[2]}"]  # one line, no other
        assert reason in mine[0]
        item = _by_name(env)[name]
        assert item.get(fields.MODEL, with_album=False) is None  # untouched in the database
        assert _digest(path) == before[name]  # and on disk
    warning = [line for line in lines if str(truncated) in line]
    assert len(warning) == 1 and warning[0].startswith("warning:") and "of 12 s" in warning[0]
    by_name = _by_name(env)
    for name in [entry[0] for entry in ODD] + ["half.mp3"]:
        item = by_name[name]
        assert item.emotion_model == TEST_MODEL_VERSION, name
        assert item.mood in fields.MOODS
        if not name.startswith("eight"):  # mutagen reads no tags from 8-channel WAV
            assert _file_mood(env.music / name) == item.mood, name
    assert "Traceback" not in out


def test_unwritable_file_leaves_its_item_untouched(
    env: BeetsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that refuses writing (read-only, as mutagen's open() sees it) is one failure
    line; neither the database nor the file change, the other items are done, and the
    next run, once the file is writable, picks it up."""
    import mutagen._util

    good = env.make_track("good.flac", title="Good")
    locked = env.make_track("locked.flac", title="Locked")
    env.add(good, locked)
    before = _digest(locked)
    real_open = open

    def read_only(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if os.fsdecode(file) == str(locked) and ("+" in mode or "w" in mode):
            raise PermissionError(13, "Permission denied", os.fsdecode(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(mutagen._util, "open", read_only, raising=False)
    out = env.run_failing("emotion", "-w")

    assert "tagged 1, skipped 0, failed 1" in out
    line = f"failed: {locked}: cannot write tags (permission denied); nothing stored"
    assert line in out
    assert env.items("title:Locked")[0].get(fields.MODEL, with_album=False) is None
    assert _digest(locked) == before
    assert _file_mood(good) == env.items("title:Good")[0].mood

    monkeypatch.undo()
    assert "tagged 1, skipped 1" in env.run("emotion", "-w")
    assert _file_mood(locked) == env.items("title:Locked")[0].mood


def test_file_permissions_for_real(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """chmod 000 and chmod 444 against a real ``beet`` process. Run as root, the process
    drops CAP_DAC_OVERRIDE first, so the permissions bind it as they bind a user."""
    try:
        preexec = catalogue.permission_preexec()
    except OSError as error:
        pytest.skip(f"permissions cannot be made to bind here ({error})")
    scratch = catalogue.Scratch(tmp_path / "lib", tiny_checkpoint, workers=0)
    for name in ("good.flac", "locked.flac", "readonly.flac"):
        scratch.add(name, catalogue.synth(scratch.music / name, seconds=3))
    (scratch.music / "locked.flac").chmod(0)
    (scratch.music / "readonly.flac").chmod(0o444)
    scratch.snapshot()

    result = scratch.beet("emotion", "-w", preexec=preexec)

    assert result.returncode == 1, result.stderr  # two files failed
    assert result.stderr.strip().endswith("error: emotion: 2 tracks failed (listed above)")
    assert "tagged 1, skipped 0, failed 2" in result.stdout
    failed = result.lines("failed:")
    locked, readonly = scratch.music / "locked.flac", scratch.music / "readonly.flac"
    assert f"failed: {locked}: cannot read file: permission denied" in failed
    assert any(
        line.startswith(f"failed: {readonly}: cannot write tags (permission denied)")
        for line in failed
    )
    assert scratch.state("locked.flac", TEST_MODEL_VERSION) == "untouched"
    assert scratch.state("readonly.flac", TEST_MODEL_VERSION) == "untouched"
    assert scratch.state("good.flac", TEST_MODEL_VERSION) == "tagged"


def test_ctrl_c_mid_run_leaves_every_item_whole(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """SIGINT to a real ``beet emotion -w`` while files are being written (each write is
    followed by a pause, and items reach the database in groups about once a second, so the
    signal lands between file writes and their database store): every item is fully updated
    or untouched; ``beet ls`` works meanwhile; the next run does the rest."""
    import subprocess
    import sys
    import time

    scratch = catalogue.Scratch(tmp_path / "lib", tiny_checkpoint, workers=0)
    names = [f"t{n:02d}.flac" for n in range(16)]
    for name in names:
        scratch.add(name, catalogue.synth(scratch.music / name, seconds=2, title=name))
    scratch.snapshot()
    listed: list[int] = []

    def interrupt(process: subprocess.Popen[str]) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = subprocess.run(
                [sys.executable, "-m", "beets", "ls", "-f", "$title", "mood::."],
                env=scratch.env(),
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr  # the library stays usable meanwhile
            listed.append(len(done.stdout.split()))
            if listed[-1] >= 1:  # the first group is stored: stop the run mid-way
                os.killpg(process.pid, signal.SIGINT)
                return

    stopped = scratch.beet("emotion", "-w", mode="slow-write", on_start=interrupt)

    assert "(interrupted)" in stopped.stdout
    states = {name: scratch.state(name, TEST_MODEL_VERSION) for name in names}
    assert set(states.values()) <= {"tagged", "untouched"}, states
    done = sum(state == "tagged" for state in states.values())
    assert 1 <= done < len(names)
    rerun = scratch.beet("emotion", "-w")
    assert f"tagged {len(names) - done}, skipped {done}" in rerun.stdout
    assert all(scratch.state(name, TEST_MODEL_VERSION) == "tagged" for name in names)


@pytest.fixture
def ctrl_c_raises() -> Iterator[None]:
    """Python's own SIGINT handler for the test: under ``nohup ... &`` (or a CI runner that
    starts the suite in the background) SIGINT is inherited as ignored, and then there is no
    Ctrl-C to hold back or to lose."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("ctrl_c_raises")
def test_defer_interrupts_holds_ctrl_c_until_the_block_ends() -> None:
    steps: list[str] = []
    with pytest.raises(KeyboardInterrupt), defer_interrupts():
        os.kill(os.getpid(), signal.SIGINT)
        steps.append("after the signal")  # still runs: the interrupt waits
    assert steps == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


class _InterruptedFinaliser:
    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        self.after = True  # the handler runs here, inside __del__, where Python drops errors


@pytest.mark.usefixtures("ctrl_c_raises")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_swallowed_ctrl_c_is_still_seen() -> None:
    from beetsplug.emotion.interrupts import watch_interrupts as _watch_interrupts

    with _watch_interrupts() as interrupted:
        finaliser = _InterruptedFinaliser()
        del finaliser  # KeyboardInterrupt raised and lost inside __del__
        assert interrupted()  # the run stops at the next item all the same
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
