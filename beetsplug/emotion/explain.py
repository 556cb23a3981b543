"""``beet emotion --explain``: pictures (and a text report) of why tracks got their mood.

The per-window results behind a picture are not kept in the database, so the matching items
are analysed again with the loaded model, their lyrics found by the same lookup as a normal
run (so the picture shows the lyrics source the stored result used). Nothing is stored: no
database field, no file tag, no lyrics cache, no sidecar.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import fields
from .analysis import Analyzer
from .failures import Failure
from .item_values import label
from .lyrics_sources import LyricsOutcome
from .model_inputs import LyricsInputs, predict_stream


@dataclass
class ExplainResult:
    tracks: list[Any] = field(default_factory=list)
    """``lgfn_model.explain.TrackFiles`` per explained item, in query order."""
    overview: tuple[Path, Path] | None = None
    failed: list[Failure] = field(default_factory=list)
    lyrics_errors: list[str] = field(default_factory=list)


def _info(item: Any, outcome: LyricsOutcome) -> Any:
    from lgfn_model.explain import TrackInfo

    path = os.fsdecode(item.path)
    extra: dict[str, str] = {}
    stored = fields.own_value(item, fields.MOOD)
    model = fields.own_value(item, fields.MODEL)
    if stored:
        extra["Stored mood"] = f"{stored} (model {model})" if model else f"{stored} (set by hand)"
    year = fields.own_value(item, "year")
    if year:
        extra["Year"] = str(year)
    return TrackInfo(
        title=str(fields.own_value(item, "title") or Path(path).stem),
        artist=str(fields.own_value(item, "artist") or ""),
        album=str(fields.own_value(item, "album") or ""),
        path=path,
        lyrics_source=outcome.label,
        extra=extra,
    )


def _stem(item: Any) -> str:
    from lgfn_model.explain import slug

    artist = fields.own_value(item, "artist")
    title = fields.own_value(item, "title")
    if title:
        return slug(f"{artist} - {title}" if artist else str(title))
    return slug(Path(os.fsdecode(item.path)).stem)


def explain_items(
    analyzer: Analyzer,
    items: Sequence[Any],
    out: Path | None,
    show_text: bool,
    printer: Callable[[str], None],
    title: str = "",
) -> ExplainResult:
    """Analyse ``items`` again and write ``STEM.png`` + ``STEM.html`` per track into ``out``
    (None: write nothing), plus ``overview.png/.html`` when there are several; print the
    text report of each track when ``show_text``."""
    from lgfn_model.explain import unique_stem
    from lgfn_model.explain.writer import explain_track, write_overview, write_track

    result = ExplainResult()
    if not items:
        return result
    predictor = analyzer.model.predictor()  # ModelUnavailable before anything is looked up
    # force=False: sources that said "not found" before are not asked again, as in a run.
    inputs = LyricsInputs(analyzer.finder, items, force=False)
    taken: set[str] = {"overview"}
    results = predict_stream(predictor, inputs)
    try:
        for track in results:
            item, outcome = inputs.take(track.input.key)
            result.lyrics_errors.extend(outcome.errors)
            if track.prediction is None:
                result.failed.append(Failure.from_model(item, track.error))
                continue
            info = _info(item, outcome)
            if out is not None:
                files = write_track(track.prediction, info, out, unique_stem(_stem(item), taken))
                printer(f"emotion: {label(item)}: wrote {files.png} and {files.html}")
            else:
                files = explain_track(track.prediction, info)
            if show_text:
                printer(files.report())
                printer("")
            result.tracks.append(files)
    finally:
        results.close()
    if out is not None and len(result.tracks) > 1:
        result.overview = write_overview(result.tracks, out, "overview", title)
        printer(f"emotion: wrote {result.overview[0]} and {result.overview[1]}")
    return result
