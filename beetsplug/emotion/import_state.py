"""What the plugin keeps during one ``beet import``: between its stages and up to its end.

The import stage analyses items before the importer has put their files in the library, so
what belongs beside a file (an ``.lrc``) waits here until ``import_task_files``; the whole
import's summary is printed once, at its end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .progress import Summary


@dataclass
class DeferredFiles:
    """Files to put beside each imported item once its file is in place (by item id)."""

    sidecars: dict[int, str] = field(default_factory=dict)
    """LRC text to write beside the item (``store_lyrics: lrc``)."""
    origins: dict[int, Path] = field(default_factory=dict)
    """The ``.lrc`` the item's lyrics came from, to copy beside the new file (``copy_lrc``)."""


@dataclass
class ImportState:
    summary: Summary = field(default_factory=Summary)
    """Every task's run, merged."""
    model_failed: bool = False
    """The model could not load: the rest of the import is not analysed (said once)."""
    deferred: DeferredFiles = field(default_factory=DeferredFiles)
