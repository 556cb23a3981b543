"""Fault suite, full disk (issue 22): a tag write that fails leaves the file byte for byte as
it was, and a library database that refuses writes stops the run with one line, the summary
and the list of files written but not stored; the next run, with room again, completes.

The disk is a real tmpfs filled with zeros where mounting one is permitted (root); the
variants that always run make the same failure in the kernel (``RLIMIT_FSIZE``: writes past
the limit fail with EFBIG) or in SQLite (the database capped at its size and filled).
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from audio_factory import FORMATS, make_format_file
from beets.library import Item, Library
from mediafile import MediaFile

from beetsplug.emotion import safe_save, tags
from beetsplug.emotion.store_batch import StoreBatch, StoreFailed
from tools import fault_catalogue as catalogue

from .conftest import TEST_MODEL_VERSION

VALUES = {"mood": "happy", "emotion_model": "lgfn-x", "emotion_valence": 0.25}
BIGGER = {"mood": "sad", "emotion_model": "lgfn-y" * 40, "emotion_arousal": 0.5}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def full_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """An 8 MB tmpfs (skipped where it cannot be mounted)."""
    with catalogue.tmpfs(tmp_path / "full", "8m") as why_not:
        if why_not:
            pytest.skip(f"no real full disk here: {why_not}")
        yield tmp_path / "full"


# --------------------------------------------------------------------------- files, beet runs

NAMES = ("grow.mp3", "grow.flac", "linked.mp3")


def _library_of_growing_files(scratch: catalogue.Scratch, folder: Path) -> dict[str, str | None]:
    """Tracks whose tags have no padding (every write must grow them), sizes a multiple of
    the page size; one of them hard-linked. Returns their decoded audio's digests."""
    for name in NAMES:
        path = catalogue.no_padding(catalogue.synth(folder / name, seconds=6, title=name))
        scratch.add(name, path)
    os.link(folder / "linked.mp3", folder / "linked-elsewhere.mp3")
    scratch.snapshot()
    return {name: catalogue.decoded(folder / name) for name in NAMES}


def _check_failed_then_done(
    scratch: catalogue.Scratch,
    folder: Path,
    audio: dict[str, str | None],
    result: catalogue.RunResult,
    reason: str,
    free: Any,
) -> None:
    assert result.returncode == 1, result.stderr  # files failed: scripts can tell
    assert result.stderr.strip().endswith(
        f"error: emotion: {len(NAMES)} tracks failed (listed above)"
    )
    assert "Traceback" not in result.output
    assert f"tagged 0, skipped 0, failed {len(NAMES)}" in result.stdout
    for name in NAMES:
        line = f"failed: {folder / name}: cannot write tags ({reason}); nothing stored"
        assert sum(line in ln for ln in result.lines("failed:")) == 1, result.stdout
        # no values in the database, the file's sha256 as before the run
        assert scratch.state(name, TEST_MODEL_VERSION) == "untouched"
    assert catalogue.temp_leftovers(folder) == []
    free()
    rerun = scratch.beet("emotion", "-w")
    assert f"tagged {len(NAMES)}, skipped 0, failed 0" in rerun.stdout, rerun.output
    for name in NAMES:
        assert scratch.state(name, TEST_MODEL_VERSION) == "tagged"
        assert catalogue.decoded(folder / name) == audio[name]  # decodes to the same samples
        assert not (folder / name).read_bytes().endswith(b"\0" * 64)  # no tail of NULs
    link = folder / "linked-elsewhere.mp3"
    assert link.stat().st_nlink == 2 and _digest(link) == _digest(folder / "linked.mp3")


def test_tag_writes_on_a_real_full_disk_change_no_file(
    tmp_path: Path, tiny_checkpoint: Path, full_tmpfs: Path
) -> None:
    scratch = catalogue.Scratch(tmp_path / "lib", tiny_checkpoint, workers=0)
    audio = _library_of_growing_files(scratch, full_tmpfs)
    filler = catalogue.fill_disk(full_tmpfs)

    result = scratch.beet("emotion", "-w")

    _check_failed_then_done(
        scratch, full_tmpfs, audio, result, "no space left on device", filler.unlink
    )


def test_tag_writes_past_the_file_size_limit_change_no_file(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    """Always runs: RLIMIT_FSIZE makes the kernel refuse every write past a size (EFBIG),
    where a full disk refuses it with ENOSPC; the same rewrite paths fail the same way."""
    scratch = catalogue.Scratch(tmp_path / "lib", tiny_checkpoint, workers=0)
    folder = tmp_path / "music"
    audio = _library_of_growing_files(scratch, folder)
    limit = min((folder / name).stat().st_size for name in NAMES) + 16

    result = scratch.beet("emotion", "-w", preexec=catalogue.file_size_limit(limit))

    _check_failed_then_done(scratch, folder, audio, result, "file too large", lambda: None)


# --------------------------------------------------------------------------- database full


def _names(result: catalogue.RunResult, folder: Path) -> set[str]:
    return {
        path.name
        for path in folder.iterdir()
        if any(f"not stored: {path} (" in line for line in result.lines("not stored:"))
    }


def _check_store_refused(
    scratch: catalogue.Scratch, music: Path, result: catalogue.RunResult, names: list[str]
) -> None:
    assert result.returncode == 1
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: emotion: {scratch.root / 'library.db'}: cannot store results (database or "
        "disk is full); run again when it can be written"
    ]
    head = result.lines("emotion: tagged")
    assert len(head) == 1 and "(stopped: the library cannot be written)" in head[0]
    states = {name: scratch.state(name, TEST_MODEL_VERSION) for name in names}
    written = {name for name, state in states.items() if "half-written" in state}
    assert written and _names(result, music) == written  # every such file listed, no other
    assert f"not stored {len(written)}" in head[0]
    assert set(states.values()) <= {"tagged", "untouched", "file changed, database not "
                                    "(half-written)"}  # fmt: skip


def test_database_on_a_real_disk_that_fills_during_the_run(
    tmp_path: Path, tiny_checkpoint: Path, full_tmpfs: Path
) -> None:
    """The disk fills once the run holds the library (a disk full before the run is refused
    earlier, by the library lock: see docs/robustness.md)."""
    import subprocess
    import time

    from beetsplug.emotion.library_lock import SUFFIX

    scratch = catalogue.Scratch(full_tmpfs, tiny_checkpoint, workers=0)
    music = tmp_path / "music"
    names = [f"s{n}.flac" for n in range(5)]
    for name in names:
        scratch.add(name, catalogue.synth(music / name, seconds=3, title=name))
    scratch.snapshot()
    lock = Path(str(full_tmpfs / "library.db") + SUFFIX)
    fillers: list[Path] = []

    def fill_when_locked(process: subprocess.Popen[str]) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if lock.exists() and lock.read_text().strip():
                break
            time.sleep(0.02)
        fillers.append(catalogue.fill_disk(full_tmpfs))

    result = scratch.beet("emotion", "-w", mode="slow-write", on_start=fill_when_locked)

    _check_store_refused(scratch, music, result, names)
    fillers[0].unlink()
    rerun = scratch.beet("emotion", "-w")
    assert rerun.returncode == 0, rerun.output
    assert all(scratch.state(name, TEST_MODEL_VERSION) == "tagged" for name in names)


def test_database_that_refuses_to_grow(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """Always runs: SQLite's own SQLITE_FULL, from a database capped at its size and filled
    (the ``db-full`` mode of the fault catalogue)."""
    scratch = catalogue.Scratch(tmp_path / "lib", tiny_checkpoint, workers=0)
    music = tmp_path / "music"
    names = [f"s{n}.flac" for n in range(4)]
    for name in names:
        scratch.add(name, catalogue.synth(music / name, seconds=3, title=name))
    scratch.snapshot()

    result = scratch.beet("emotion", "-w", mode="db-full")

    _check_store_refused(scratch, music, result, names)
    rerun = scratch.beet("emotion", "-w")
    assert rerun.returncode == 0, rerun.output
    assert f"tagged {len(names)}, skipped 0, failed 0" in rerun.stdout
    assert all(scratch.state(name, TEST_MODEL_VERSION) == "tagged" for name in names)


def test_a_refused_commit_stores_none_of_its_group_and_frees_the_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """beets commits a transaction on its way out even after an error: the group must be
    rolled back instead (all or nothing), and the library must stay usable afterwards."""
    from contextlib import nullcontext

    lib = Library(str(tmp_path / "library.db"), str(tmp_path / "music"))
    items = []
    for n in range(3):
        item = Item(title=f"T{n}", path=str(tmp_path / f"{n}.flac").encode())
        lib.add(item)
        items.append(item)
    batch = StoreBatch(nullcontext, lib)
    stored: list[str] = []
    for item in items:
        item["mood"] = "sad"
        batch.add(item, lambda t=item.title: stored.append(t), written=True)
    real_store = Item.store

    def store(self: Item, *args: Any, **kwargs: Any) -> None:
        if self.title == "T2":
            raise sqlite3.OperationalError("database or disk is full")
        real_store(self, *args, **kwargs)

    monkeypatch.setattr(Item, "store", store)
    with pytest.raises(StoreFailed) as caught:
        batch.flush()
    assert caught.value.reason == (
        f"{tmp_path / 'library.db'}: cannot store results (database or disk is full)"
    )
    assert [entry.item.title for entry in caught.value.pending] == ["T0", "T1", "T2"]
    assert stored == [] and len(batch) == 0
    monkeypatch.undo()

    seen: list[Any] = []
    reader = threading.Thread(target=lambda: seen.extend(i.get("mood") for i in lib.items()))
    reader.start()
    reader.join(timeout=10)
    assert not reader.is_alive(), "the library stayed locked after the refused commit"
    assert seen == [None, None, None]  # T0 and T1 were not committed either
    lib._close()


# --------------------------------------------------------------------------- the write path


@pytest.mark.parametrize("name", sorted(FORMATS))
@pytest.mark.parametrize("plan_limit", [safe_save.PLAN_LIMIT, 64 * 1024])
@pytest.mark.parametrize("hard_link", [False, True])
def test_every_rewrite_path_gives_mutagens_own_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, plan_limit: int, hard_link: bool
) -> None:
    """Planned in memory or not (a small limit sends growing files down the copy / backup
    paths), replaced or rewritten in place (hard link): the file ends byte for byte as
    mutagen's own in-place save leaves it."""
    monkeypatch.setattr(safe_save._Plan.__init__, "__defaults__", (plan_limit,))
    source = make_format_file(tmp_path, name, seconds=1.0)
    ours = tmp_path / f"ours{source.suffix}"
    reference = tmp_path / f"reference{source.suffix}"
    shutil.copy(source, ours)
    shutil.copy(source, reference)
    if hard_link:
        os.link(ours, tmp_path / "link")
    for values in (VALUES, BIGGER, VALUES):
        tags.write_tags(ours, values)
        media = MediaFile(str(reference))
        media.update(values)
        media.save()
        assert ours.read_bytes() == reference.read_bytes()
        assert tags.read_tags(ours)["mood"] == values["mood"]
    assert os.stat(ours).st_nlink == (2 if hard_link else 1)
    assert catalogue.temp_leftovers(tmp_path) == []


def _grown_mp3(folder: Path) -> Path:
    return catalogue.no_padding(catalogue.synth(folder / "song.mp3", seconds=3))


def test_replacing_keeps_mode_and_writes_through_a_symlink(tmp_path: Path) -> None:
    path = _grown_mp3(tmp_path)
    path.chmod(0o640)
    link = tmp_path / "alias.mp3"
    link.symlink_to(path)
    inode = path.stat().st_ino

    tags.write_tags(link, VALUES)

    assert link.is_symlink()  # the link still points at the file, which holds the tags
    assert tags.read_tags(path)["mood"] == "happy"
    assert path.stat().st_ino != inode  # grown: a new copy renamed over it
    assert path.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("where", ["write", "fsync", "rename"])
def test_a_failing_copy_leaves_the_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    path = _grown_mp3(tmp_path)
    before = _digest(path)
    full = OSError(errno.ENOSPC, "No space left on device")

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise full

    if where == "write":
        monkeypatch.setattr(safe_save._Plan, "chunks", lambda self: refuse())
    else:
        monkeypatch.setattr(safe_save.os, where if where == "fsync" else "replace", refuse)

    with pytest.raises(tags.TagError, match=r"cannot write tags \(no space left on device\)$"):
        tags.write_tags(path, VALUES)
    assert _digest(path) == before
    assert catalogue.temp_leftovers(tmp_path) == []


@pytest.mark.parametrize("plan_limit", [safe_save.PLAN_LIMIT, 64 * 1024])
def test_in_place_rewrite_puts_the_bytes_back_on_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plan_limit: int
) -> None:
    """A hard-linked file cannot be replaced: rewritten in place (planned pages, or mutagen
    with a backup), and on a failure half-way its size and bytes are put back."""
    monkeypatch.setattr(safe_save._Plan.__init__, "__defaults__", (plan_limit,))
    path = catalogue.no_padding(catalogue.synth(tmp_path / "song.flac", seconds=3))
    os.link(path, tmp_path / "link.flac")
    before = _digest(path)
    real_pwrite = os.pwrite
    full = OSError(errno.ENOSPC, "No space left on device")

    failed: list[int] = []

    def pwrite(fd: int, data: Any, offset: int) -> int:
        if failed:  # the disk has room again for putting the bytes back
            return real_pwrite(fd, data, offset)
        failed.append(real_pwrite(fd, bytes(data[: len(data) // 2]), offset))  # half went in
        raise full

    def save_into(target: Any, values: Any, id3v23: bool) -> None:
        target.seek(0)
        target.write(b"\0" * 5000)  # mutagen half-way through moving the audio
        target.flush()
        raise full

    monkeypatch.setattr(safe_save.os, "pwrite", pwrite)
    monkeypatch.setattr(safe_save, "_save_into", save_into)

    with pytest.raises(tags.TagError, match="no space left on device"):
        tags.write_tags(path, BIGGER)
    monkeypatch.undo()
    assert _digest(path) == before
    assert _digest(tmp_path / "link.flac") == before
