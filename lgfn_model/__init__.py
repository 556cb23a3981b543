"""LGFN: music mood from audio and lyrics (lyrics-aware gated fusion network).

The public API is imported lazily so that ``import lgfn_model`` (and the torch-free parts:
``lgfn_model.data.lyrics``, ``lgfn_model.model.outputs``, ``lgfn_model.model.config``) stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Predictor": "lgfn_model.runtime.predictor",
    "TrackInput": "lgfn_model.runtime.predictor",
    "TrackResult": "lgfn_model.runtime.predictor",
    "LGFN": "lgfn_model.model.network",
    "LGFNConfig": "lgfn_model.model.config",
    "MOODS": "lgfn_model.model.config",
    "TrackPrediction": "lgfn_model.model.outputs",
    "WindowPrediction": "lgfn_model.model.outputs",
    "Lyrics": "lgfn_model.data.lyrics",
    "LyricLine": "lgfn_model.data.lyrics",
    "parse_lyrics": "lgfn_model.data.lyrics",
    "read_lyrics_file": "lgfn_model.data.lyrics",
    "load_checkpoint": "lgfn_model.runtime.checkpoint",
    "save_checkpoint": "lgfn_model.runtime.checkpoint",
    "CheckpointError": "lgfn_model.runtime.checkpoint",
    "CheckpointMissingError": "lgfn_model.runtime.checkpoint",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lgfn_model' has no attribute {name!r}")
