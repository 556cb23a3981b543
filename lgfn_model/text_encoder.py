"""The lyrics text encoder's public API; the implementation lives in :mod:`lgfn_model.text`.

>>> encoder = load_text_encoder()             # multilingual-e5-small, offline, CPU
>>> vectors = encoder.encode(["la la la"])    # (1, 384) float32, L2-normalised
"""

from .text import DEFAULT_ENCODER, TEXT_ENCODERS, LyricsEncoder, load_text_encoder

__all__ = ["DEFAULT_ENCODER", "TEXT_ENCODERS", "LyricsEncoder", "load_text_encoder"]
