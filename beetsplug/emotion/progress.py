"""Progress while a run works, and the summary it ends with."""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TextIO

from .failures import Failure


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


class Progress:
    """``emotion: 37/120 tracks, 1.8 tracks/s, 0:46 left``.

    On a terminal the line is redrawn in place (at most 5 times a second); otherwise a line
    is printed every ``interval`` seconds and once at the end, so logs stay readable.
    """

    def __init__(
        self,
        total: int,
        stream: TextIO | None = None,
        enabled: bool = True,
        interval: float = 10.0,
        label: str = "emotion",
    ) -> None:
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and total > 0
        self.label = label
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = 0.2 if self.tty else interval
        self.started = time.monotonic()
        self._last = self.started
        self._dirty = False

    def text(self, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        elapsed = max(now - self.started, 1e-9)
        line = f"{self.label}: {self.done}/{self.total} tracks"
        if self.done:
            rate = self.done / elapsed
            line += f", {rate:.2f} tracks/s"
            if self.done < self.total:
                line += f", {_clock((self.total - self.done) / rate)} left"
            else:
                line += f", {_clock(elapsed)} in all"
        return line

    def advance(self, count: int = 1) -> None:
        self.done += count
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last >= self.interval or self.done == self.total:
            self._show(now)

    def _show(self, now: float) -> None:
        self._last = now
        if self.tty:
            self.stream.write("\r" + self.text(now) + "\033[K")
            self._dirty = True
        else:
            self.stream.write(self.text(now) + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty and self._dirty:
            self.stream.write("\n")
            self.stream.flush()
            self._dirty = False


@dataclass
class Summary:
    """Counts and reasons gathered during a run, printed at its end."""

    pretend: bool = False
    version: str = ""
    tagged: int = 0
    retagged: int = 0
    """Of ``tagged``: re-tagged from their stored embedding, no audio decoded."""
    skipped: int = 0
    kept_mood: int = 0
    written: int = 0
    albums: int = 0
    interrupted: bool = False
    failed: list[Failure] = field(default_factory=list)
    write_failed: list[Failure] = field(default_factory=list)
    lyrics: Counter[str] = field(default_factory=Counter)
    lyrics_errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """Things that did not stop an item but deserve a line (GPU out of memory, a file that
    decoded shorter than its length)."""
    store_error: str = ""
    """Why the library database refused a write (disk full, read-only); the run stopped
    there. Empty when every store went through."""
    not_stored: list[str] = field(default_factory=list)
    """Items whose results the database refused: ``PATH`` plus what happened to its file."""

    def merge(self, other: Summary) -> None:
        """Add ``other`` (one import task's run) into this one (the whole import's)."""
        for name in ("tagged", "retagged", "skipped", "kept_mood", "written", "albums"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("failed", "write_failed", "lyrics_errors", "warnings", "not_stored"):
            getattr(self, name).extend(getattr(other, name))
        self.lyrics.update(other.lyrics)
        self.version = self.version or other.version
        self.store_error = self.store_error or other.store_error
        self.interrupted = self.interrupted or other.interrupted

    @property
    def seen(self) -> int:
        """How many items the run dealt with, whatever became of them."""
        return self.tagged + self.skipped + len(self.failed) + len(self.not_stored)

    def lines(self) -> list[str]:
        verb = "would tag" if self.pretend else "tagged"
        head = f"emotion: {verb} {self.tagged}, skipped {self.skipped}"
        if self.version:
            head += f" (already analysed by {self.version})" if self.skipped else ""
        head += f", failed {len(self.failed)}"
        if self.albums:
            head += f"; albums {self.albums}"
        if self.store_error:
            head += f", not stored {len(self.not_stored)} (stopped: the library cannot be written)"
        if self.interrupted:
            head += " (interrupted)"
        out = [head]
        if self.lyrics:
            parts = ", ".join(f"{source} {count}" for source, count in sorted(self.lyrics.items()))
            out.append(f"  lyrics by source: {parts}")
        if self.retagged:
            out.append(
                f"  {self.retagged} of them re-tagged from stored embeddings (no audio decoded)"
            )
        if self.written:
            out.append(f"  tags written to {self.written} file(s)")
        if self.kept_mood:
            out.append(f"  kept {self.kept_mood} mood(s) set by hand (use --force to replace)")
        for reason in self.failed:
            out.append(f"  failed: {reason}")
        for reason in self.write_failed:
            out.append(f"  not written: {reason}")
        for reason in self.not_stored:
            out.append(f"  not stored: {reason}")
        for reason in self.lyrics_errors:
            out.append(f"  lyrics lookup: {reason}")
        for reason in self.warnings:
            out.append(f"  warning: {reason}")
        return out
