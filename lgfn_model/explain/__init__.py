"""Explain a prediction: the mood timeline, valence and arousal, the gate and the lyric lines
the model attended to, as a PNG (plus an HTML page), or as plain text; and an album or
playlist picture placing tracks on the valence-arousal plane. See docs/explain.md.

Rendering uses matplotlib's Agg canvas directly: no display needed, no backend switched.
Importing this package is cheap; matplotlib loads on first use. The ``lgfn explain`` command
is :mod:`lgfn_model.cli.explain`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from lgfn_model.explain.info import TrackInfo, slug, unique_stem

_LAZY = {
    "Timeline": "lgfn_model.explain.timeline",
    "build_timeline": "lgfn_model.explain.timeline",
    "text_report": "lgfn_model.explain.text",
    "render_track": "lgfn_model.explain.track_picture",
    "render_overview": "lgfn_model.explain.overview_picture",
    "track_figure": "lgfn_model.explain.track_picture",
    "overview_figure": "lgfn_model.explain.overview_picture",
    "OverviewEntry": "lgfn_model.explain.overview_picture",
    "TrackFiles": "lgfn_model.explain.writer",
    "explain_track": "lgfn_model.explain.writer",
    "write_track": "lgfn_model.explain.writer",
    "write_overview": "lgfn_model.explain.writer",
    "has_display": "lgfn_model.explain.writer",
}

__all__ = [
    "OverviewEntry",
    "Timeline",
    "TrackFiles",
    "TrackInfo",
    "build_timeline",
    "explain_track",
    "has_display",
    "overview_figure",
    "render_overview",
    "render_track",
    "slug",
    "text_report",
    "track_figure",
    "unique_stem",
    "write_overview",
    "write_track",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lgfn_model.explain' has no attribute {name!r}")
