"""Render and write the explanation files: ``STEM.png`` + ``STEM.html`` per track, and
``overview.png`` + ``overview.html`` for several tracks."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lgfn_model.explain.info import TrackInfo
from lgfn_model.explain.overview_picture import OverviewEntry, render_overview
from lgfn_model.explain.page import overview_page, track_page
from lgfn_model.explain.text import text_report
from lgfn_model.explain.timeline import Timeline, build_timeline
from lgfn_model.explain.track_picture import render_track
from lgfn_model.model.outputs import TrackPrediction


@dataclass
class TrackFiles:
    timeline: Timeline
    info: TrackInfo
    png: Path | None = None
    html: Path | None = None

    def report(self) -> str:
        return text_report(self.timeline, self.info)

    def overview_entry(self) -> OverviewEntry:
        prediction = self.timeline.prediction
        return OverviewEntry(
            self.info.heading,
            prediction.mood,
            prediction.valence,
            prediction.arousal,
            prediction.gate_lyrics,
        )


def _write_atomically(path: Path, data: bytes) -> None:
    """Readers never see half a file; an existing file is replaced."""
    # open(..., "xb") rather than mkstemp: the file gets the user's umask, not mode 0600.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temporary, "xb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def explain_track(prediction: TrackPrediction, info: TrackInfo) -> TrackFiles:
    """The timeline of a prediction, nothing written (for the text report)."""
    return TrackFiles(build_timeline(prediction), info)


def write_track(
    prediction: TrackPrediction, info: TrackInfo, directory: Path, stem: str
) -> TrackFiles:
    """Write ``directory/STEM.png`` and ``directory/STEM.html`` (created if needed)."""
    files = explain_track(prediction, info)
    directory.mkdir(parents=True, exist_ok=True)
    png = render_track(files.timeline, info)
    files.png = directory / f"{stem}.png"
    files.html = directory / f"{stem}.html"
    _write_atomically(files.png, png)
    _write_atomically(files.html, track_page(files.timeline, info, png).encode("utf-8"))
    return files


def write_overview(
    tracks: Sequence[TrackFiles], directory: Path, stem: str = "overview", title: str = ""
) -> tuple[Path, Path]:
    """The album/playlist view of ``tracks``: ``STEM.png`` and ``STEM.html`` (which links to
    each track's page by its file name, relative to ``directory``)."""
    entries = [track.overview_entry() for track in tracks]
    labels = list(tracks[0].timeline.labels) if tracks else []
    count = len(entries)
    heading = title or f"{count} track{'s' if count != 1 else ''} on the valence-arousal plane"
    png = render_overview(entries, labels, heading)
    directory.mkdir(parents=True, exist_ok=True)
    png_path, html_path = directory / f"{stem}.png", directory / f"{stem}.html"
    pages = [track.html.name if track.html is not None else None for track in tracks]
    _write_atomically(png_path, png)
    _write_atomically(html_path, overview_page(entries, pages, png, heading).encode("utf-8"))
    return png_path, html_path


def has_display() -> bool:
    """Whether the user can look at the pictures here: Windows and macOS always; elsewhere
    when an X11 or Wayland display is set (not over a bare SSH session or in a console)."""
    import sys

    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
