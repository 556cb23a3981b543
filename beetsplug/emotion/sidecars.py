"""``song.lrc`` files beside library files: written from fetched synced lyrics, or copied along
on import. Never over a file that is already there."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def write_sidecar(item: Any, text: str, log: Any) -> bool:
    """Write ``song.lrc`` beside the file unless one exists already (never overwrite)."""
    from .lyrics_sources import sidecar_paths

    audio = Path(os.fsdecode(item.path))
    if any(path.exists() for path in sidecar_paths(audio)):
        return False
    target = sidecar_paths(audio)[0]
    try:
        with open(target, "x", encoding="utf-8") as out:
            out.write(text.rstrip("\n") + "\n")
    except FileExistsError:
        return False
    except OSError as error:
        log.warning("{}: cannot write lyrics ({})", target, error.strerror or error)
        return False
    return True


def copy_sidecar(origin: Path, item: Any, log: Any) -> bool:
    """Copy the ``.lrc`` an import read beside the library file (never over an existing one)."""
    import shutil

    from .lyrics_sources import find_sidecar, sidecar_paths

    audio = Path(os.fsdecode(item.path))
    target = sidecar_paths(audio)[0]
    if find_sidecar(audio) is not None or not origin.is_file():
        return False  # already there (in-place import) or gone (moved by someone else)
    try:
        shutil.copyfile(origin, target)
    except OSError as error:
        log.warning("{}: cannot copy lyrics to {} ({})", origin, target, error.strerror or error)
        return False
    return True
