"""LGFN: music mood from audio and lyrics (lyrics-aware gated fusion network).

The public API is imported lazily so that ``import lgfn_model`` (and the torch-free parts:
``lgfn_model.lyrics``, ``lgfn_model.outputs``, ``lgfn_model.config``) stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Predictor": "lgfn_model.predictor",
    "TrackInput": "lgfn_model.predictor",
    "TrackResult": "lgfn_model.predictor",
    "LGFN": "lgfn_model.model",
    "LGFNConfig": "lgfn_model.config",
    "MOODS": "lgfn_model.config",
    "TrackPrediction": "lgfn_model.outputs",
    "WindowPrediction": "lgfn_model.outputs",
    "Lyrics": "lgfn_model.lyrics",
    "LyricLine": "lgfn_model.lyrics",
    "parse_lyrics": "lgfn_model.lyrics",
    "read_lyrics_file": "lgfn_model.lyrics",
    "load_checkpoint": "lgfn_model.checkpoint",
    "save_checkpoint": "lgfn_model.checkpoint",
    "CheckpointError": "lgfn_model.checkpoint",
    "CheckpointMissingError": "lgfn_model.checkpoint",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lgfn_model' has no attribute {name!r}")
