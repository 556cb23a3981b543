"""What went wrong with one file, as a value: the file, the step that failed, and why.

A summary lists these one per line (``PATH: MESSAGE``), and code that needs to know which
file or which step failed reads the fields instead of parsing the line back apart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ANALYSE = "analyse"
"""Decoding the audio or running the model (lgfn_model's TrackResult.error)."""
RESULT = "result"
"""The model answered, but with values that cannot be stored (NaN)."""
READ = "read"
"""Reading the file's tags (to compare them with the database's)."""
WRITE = "write"
"""Writing the tags into the file."""


@dataclass(frozen=True)
class Failure:
    path: str
    stage: str
    message: str
    """One line, without the path."""

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

    @classmethod
    def of(cls, item: Any, stage: str, message: str) -> Failure:
        return cls(os.fsdecode(item.path), stage, _one_line(message))

    @classmethod
    def from_model(cls, item: Any, error: str | None) -> Failure:
        """A failed ``TrackResult``: lgfn_model gives its reason as one string that may start
        with the audio's path (or only its name), which is dropped here, once, at the seam."""
        path = os.fsdecode(item.path)
        reason = _one_line(error or "no result")
        for prefix in (path, Path(path).name, str(Path(path))):
            if reason.startswith(prefix + ":"):
                reason = reason[len(prefix) + 1 :].strip()
                break
        return cls(path, ANALYSE, reason)

    @classmethod
    def from_tag_error(cls, error: Any, stage: str, note: str = "") -> Failure:
        """A ``tags.TagError`` (its path and reason kept apart), with ``note`` appended."""
        return cls(error.path, stage, error.reason + note)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
