"""Saving tags into an audio file so that a failed write leaves the file as it was.

mutagen never writes to the file here: it saves into a plan held in memory, which is then
written in place (same size), or into a copy beside the file renamed over it (size changes),
or in place with the original bytes put back on error (the file cannot be replaced). The
comment under the imports says why each."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import suppress
from typing import IO, Any

import mediafile
import mutagen
from mediafile import MediaFile
from mutagen._util import FileThing

# mutagen rewrites a file in place, and a tag that outgrows its padding makes it move all the
# audio behind it. On a full disk that move fails half-way, and mutagen's attempt to cut the
# file back fails too (its buffered truncate flushes first, and the flush fails again): the
# file keeps a tail of NUL bytes and no longer decodes cleanly. So mutagen never writes to the
# file here. It saves into a ``_Plan`` (reads come from the file, writes stay in memory), and
# the plan is then carried out in one of three ways:
#
# - same size (the tag fits its padding, every write after the first): the changed pages are
#   written in place; they already have their disk blocks, so a full disk cannot fail them
#   (copy-on-write filesystems aside), and the original bytes are kept to put back if a
#   write fails anyway;
# - the size changes: a copy beside the file (same folder, mode and owner) is written,
#   fsynced and renamed over it, so a full disk or a kill -9 leaves the old file whole;
# - the size changes but the file cannot be replaced (more hard links, a folder we cannot
#   write, an owner we cannot give the copy): in place, the growth written first, and on any
#   error the file is cut back to its old size and its original pages put back.
#
# A rewrite bigger than PLAN_LIMIT (the audio moved in a large file) is not planned in
# memory: the copy beside the file is made first and mutagen saves into the copy; without a
# copy, a backup goes to the temp folder and is copied back over the file on error.

PLAN_LIMIT = 8 * 1024 * 1024
"""Most bytes a rewrite may change and still be planned in memory."""
_PAGE = 64 * 1024
_CHUNK = 1024 * 1024
TEMP_SUFFIX = ".emotion-tmp"
"""Temporary copies are named ``.NAME.XXXX.emotion-tmp.EXT`` (hidden, so beets' importer
skips one left by a power cut; the extension lets mutagen know the format)."""


class _TooBig(mutagen.MutagenError):
    """The planned rewrite outgrew PLAN_LIMIT. A MutagenError so that mediafile passes it on
    quietly (it logs any other exception from inside mutagen as an error)."""


class _Plan:
    """The file as mutagen sees it while it saves: reads come from the real file, writes go
    to copy-on-write pages in memory. Nothing reaches the disk."""

    def __init__(self, base: IO[bytes], limit: int = PLAN_LIMIT) -> None:
        self._base_file = base
        self._fd = base.fileno()
        self.name = base.name
        self.base_size = os.fstat(self._fd).st_size
        self.size = self.base_size
        self.visible = self.base_size
        """Bytes of the file from here on read as zeros (mutagen truncated them away)."""
        self._pos = 0
        self._pages: dict[int, bytearray] = {}
        self._max_pages = max(1, limit // _PAGE)
        self.too_big = False

    # -- the file protocol mutagen uses -------------------------------------------------------

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def flush(self) -> None:
        pass

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        start = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self.size}[whence]
        if start + offset < 0:
            raise OSError(errno.EINVAL, "negative seek position")
        self._pos = start + offset
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        end = self.size if size is None or size < 0 else min(self.size, self._pos + size)
        out = bytearray()
        pos = self._pos
        while pos < end:
            index, offset = divmod(pos, _PAGE)
            count = min(_PAGE - offset, end - pos)
            page = self._pages.get(index)
            out += page[offset : offset + count] if page is not None else self._original(pos, count)
            pos += count
        self._pos = max(self._pos, pos)
        return bytes(out)

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            index, offset = divmod(self._pos, _PAGE)
            count = min(_PAGE - offset, len(view) - done)
            self._page(index)[offset : offset + count] = view[done : done + count]
            self._pos += count
            done += count
        self.size = max(self.size, self._pos)
        return len(view)

    def truncate(self, size: int | None = None) -> int:
        size = self._pos if size is None else size
        if size < self.size:
            for index in [i for i in self._pages if i * _PAGE >= size]:
                del self._pages[index]
            index, offset = divmod(size, _PAGE)
            if index in self._pages:
                self._pages[index][offset:] = bytes(_PAGE - offset)
            self.visible = min(self.visible, size)
        self.size = size  # bytes past the old end read as zeros, as in a real file
        return size

    # -- the result ---------------------------------------------------------------------------

    def _original(self, start: int, count: int) -> bytes:
        """The file's bytes at ``start`` as mutagen should see them now (zeros where cut)."""
        end = min(start + count, self.visible)
        data = os.pread(self._fd, end - start, start) if end > start else b""
        return data + bytes(count - len(data))

    def _page(self, index: int) -> bytearray:
        page = self._pages.get(index)
        if page is None:
            if len(self._pages) >= self._max_pages:
                self.too_big = True
                raise _TooBig("rewrite too large to plan in memory")
            page = self._pages[index] = bytearray(self._original(index * _PAGE, _PAGE))
        return page

    def runs(self) -> list[tuple[int, bytes]]:
        """``(offset, bytes)`` to write over the file (within the new size), those that differ
        from what it holds, in file order; neighbours are merged."""
        wanted = set(self._pages)
        if self.visible < min(self.size, self.base_size):  # cut, then grown again: zeros
            first = self.visible // _PAGE
            wanted.update(range(first, (min(self.size, self.base_size) - 1) // _PAGE + 1))
        runs: list[tuple[int, bytes]] = []
        for index in sorted(wanted):
            start = index * _PAGE
            if start >= self.size:
                continue
            self.seek(start)
            data = self.read(_PAGE)
            if start + len(data) <= self.base_size and os.pread(self._fd, len(data), start) == data:
                continue
            if runs and runs[-1][0] + len(runs[-1][1]) == start:
                runs[-1] = (runs[-1][0], runs[-1][1] + data)
            else:
                runs.append((start, data))
        return runs

    def chunks(self) -> Iterator[bytes]:
        """The whole new file, a megabyte at a time."""
        pos = 0
        while pos < self.size:
            self.seek(pos)
            data = self.read(_CHUNK)
            yield data
            pos += len(data)


class _CannotPatch(Exception):
    """The file cannot be opened for writing in place (a FUSE mount without read-write
    opens); the copy beside it is used instead."""


def save_media(name: str, media: MediaFile, values: Mapping[str, Any], id3v23: bool) -> None:
    real = os.path.realpath(name)  # replace a symlink's target, never the link itself
    _check_writable(real)
    info = os.stat(real)
    with open(real, "rb") as base:
        plan: _Plan | None = _Plan(base)
        media.filething = FileThing(plan, None, name)
        try:
            media.save()
        except mediafile.UnreadableFileError:
            if plan is None or not plan.too_big:
                raise
        if plan is not None and plan.too_big:
            plan = None
        if plan is not None:
            runs = plan.runs()
            if not runs and plan.size == plan.base_size:
                return  # the file holds these values already
            if plan.size == plan.base_size:
                try:
                    return _patch(real, plan, runs)
                except _CannotPatch:
                    pass
        if info.st_nlink == 1 and _replace(real, info, plan, values, id3v23, base):
            return
        if plan is not None:
            return _patch(real, plan, plan.runs())
    _rewrite_with_backup(real, values, id3v23)


def _check_writable(real: str) -> None:
    """A file we may not write is refused, as mutagen refused it: replacing it from a writable
    folder would otherwise succeed (chmod 444 must keep a file as it is)."""
    # Opened as mutagen opened it for writing (its module's ``open``), so whatever stands in
    # for that open (the fault suite's read-only file) sees the same attempt as before.
    opener = getattr(mutagen._util, "open", open)
    try:
        with opener(real, "rb+"):
            pass
    except OSError as error:
        if error.errno != errno.EOPNOTSUPP:  # FUSE without read-write opens: the copy works
            raise


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _patch(real: str, plan: _Plan, runs: list[tuple[int, bytes]]) -> None:
    """Carry ``runs`` out in place; on any error the file gets back its size and bytes."""
    try:
        fd = os.open(real, os.O_RDWR)
    except OSError as error:
        if error.errno == errno.EOPNOTSUPP:
            raise _CannotPatch from error
        raise
    try:
        saved = [
            (offset, os.pread(fd, min(len(data), plan.base_size - offset), offset))
            for offset, data in runs
            if offset < plan.base_size
        ]
        try:
            # Last first: growth past the old end is what needs new disk blocks, so a full
            # disk fails before an original byte is overwritten.
            for offset, data in reversed(runs):
                _pwrite_all(fd, data, offset)
            if plan.size != plan.base_size:
                os.ftruncate(fd, plan.size)
                os.fsync(fd)  # delayed allocation: a full disk shows here, not after we left
        except BaseException as error:
            _put_back(real, fd, plan.base_size, saved, error)
            raise
    finally:
        os.close(fd)


def _put_back(
    real: str, fd: int, size: int, saved: list[tuple[int, bytes]], error: BaseException
) -> None:
    try:
        os.ftruncate(fd, size)  # first: it frees the blocks the growth took
        for offset, data in saved:
            _pwrite_all(fd, data, offset)
        os.fsync(fd)
    except OSError as failed:
        raise OSError(
            getattr(error, "errno", None) or failed.errno,
            f"{_strerror(error)}; the file could not be put back as it was ({_strerror(failed)})",
        ) from error


def _strerror(error: BaseException) -> str:
    return (getattr(error, "strerror", None) or str(error) or type(error).__name__).lower()


def _save_into(target: IO[bytes], values: Mapping[str, Any], id3v23: bool) -> None:
    """A fresh mediafile on ``target`` (an open copy of the file) saves ``values`` into it.
    The plugin's fields are registered with mediafile already: the caller opened the file
    through ``tags``, which registers them."""
    media = MediaFile(target, id3v23=id3v23)
    media.update(dict(values))
    media.save()
    target.flush()


def _replace(
    real: str,
    info: os.stat_result,
    plan: _Plan | None,
    values: Mapping[str, Any],
    id3v23: bool,
    base: IO[bytes],
) -> bool:
    """Write the new file as a copy beside the old one and rename it over; False (nothing
    done) when the folder takes no new file or the copy cannot get the file's owner."""
    folder, filename = os.path.split(real)
    stem, suffix = os.path.splitext(filename)
    try:
        fd, temp = tempfile.mkstemp(
            prefix=f".{stem}.", suffix=f"{TEMP_SUFFIX}{suffix}", dir=folder or "."
        )
    except OSError as error:
        if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return False
        raise
    done = False
    try:
        with os.fdopen(fd, "w+b") as out:
            mine = os.fstat(out.fileno())
            if (mine.st_uid, mine.st_gid) != (info.st_uid, info.st_gid):
                try:
                    os.fchown(out.fileno(), info.st_uid, info.st_gid)
                except PermissionError:
                    return False  # the file is someone else's: keep it theirs, in place
            os.fchmod(out.fileno(), stat.S_IMODE(info.st_mode))
            if plan is not None:
                for chunk in plan.chunks():
                    out.write(chunk)
            else:
                shutil.copyfileobj(base, out, _CHUNK)
                out.flush()
                out.seek(0)
                _save_into(out, values, id3v23)
            out.flush()
            os.fsync(out.fileno())  # the data is on disk before the name points at it
        _copy_xattrs(real, temp)
        base.close()  # Windows cannot replace an open file
        os.replace(temp, real)
        done = True
    finally:
        if not done:
            with suppress(OSError):
                os.unlink(temp)
    _fsync_folder(folder)
    return True


def _copy_xattrs(source: str, target: str) -> None:
    """Extended attributes (ACLs, SELinux labels, user tags) go with the file, where allowed."""
    if not hasattr(os, "listxattr"):
        return
    try:
        names = os.listxattr(source)
    except OSError:
        return
    for attribute in names:
        with suppress(OSError):
            os.setxattr(target, attribute, os.getxattr(source, attribute))


def _fsync_folder(folder: str) -> None:
    """The rename itself reaches the disk (best effort: not every system can fsync one)."""
    try:
        fd = os.open(folder or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        with suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _rewrite_with_backup(real: str, values: Mapping[str, Any], id3v23: bool) -> None:
    """In place, for a large rewrite of a file that cannot be replaced: a backup first (in the
    temp folder; the file's own disk may be the full one), copied back over it on error."""
    with tempfile.NamedTemporaryFile(prefix="emotion-backup-", delete=False) as backup:
        keep = False
        try:
            with open(real, "rb") as source:
                shutil.copyfileobj(source, backup, _CHUNK)
            backup.flush()
            size = backup.tell()
            try:
                with open(real, "r+b") as target:
                    _save_into(target, values, id3v23)
                    os.fsync(target.fileno())
            except BaseException as error:
                try:
                    with open(real, "r+b") as target:
                        target.truncate(size)
                        backup.seek(0)
                        shutil.copyfileobj(backup, target, _CHUNK)
                        target.flush()
                        os.fsync(target.fileno())
                except OSError as failed:
                    keep = True
                    raise OSError(
                        getattr(error, "errno", None) or failed.errno,
                        f"{_strerror(error)}; the file could not be put back as it was "
                        f"({_strerror(failed)}; its original is in {backup.name})",
                    ) from error
                raise
        finally:
            if not keep:
                with suppress(OSError):
                    os.unlink(backup.name)
