"""Whole-text lyrics vectors for training (a model with ``song_text``), kept in the cache.

Layout under the cache root, beside the line embeddings::

    song-<encoder>/<k[:2]>/<k>.npy   the whole text's vector (dim,) float32

The key hashes the lyrics file's bytes, as a line entry's does. The vector is what the
predictor computes for a track (``LyricsEncoder.encode_documents`` of ``Lyrics.whole_text``),
so a model trains on what it will be given.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from lgfn_model.training.cache import (
    CACHE_VERSION,
    FeatureCache,
    _atomic_write,
    _digest,
    content_digest,
)

log = logging.getLogger(__name__)

SONG_TEXT_VERSION = "1"
"""Bump when the whole-text vector changes meaning (windowing, joining)."""


def song_text_file(cache: FeatureCache, source: str | os.PathLike[str], encoder_name: str) -> Path:
    key = _digest(CACHE_VERSION, SONG_TEXT_VERSION, encoder_name, content_digest(Path(source)))
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in encoder_name)
    return cache.root / f"song-{safe}" / key[:2] / f"{key}.npy"


def load_song_text(
    cache: FeatureCache, source: str | os.PathLike[str], encoder_name: str
) -> np.ndarray | None:
    """The cached vector of ``source``; None for a file with no text (it has no vector)."""
    target = song_text_file(cache, source, encoder_name)
    if not target.is_file():
        return None
    return np.load(target, allow_pickle=False).astype(np.float32)


def ensure_song_text(
    cache: FeatureCache,
    sources: Iterable[str | os.PathLike[str]],
    encoder_name: str,
    encode: Callable[[Sequence[str]], np.ndarray] | None = None,
    batch_texts: int = 32,
) -> dict[Path, str]:
    """Embed the whole text of every lyrics file not yet cached; returns {source: error}.

    ``encode`` maps whole texts to an (N, dim) array; by default the project's text encoder
    ``encoder_name`` (loaded only when something is missing). A file with no text gets none.
    """
    from lgfn_model.data.lyrics import read_lyrics_file

    errors: dict[Path, str] = {}
    pending: list[tuple[Path, str]] = []
    for source in dict.fromkeys(Path(s) for s in sources):
        try:
            target = song_text_file(cache, source, encoder_name)
            if target.is_file():
                continue
            text = read_lyrics_file(str(source)).whole_text
        except OSError as exc:
            errors[source] = f"{type(exc).__name__}: {exc}"
            continue
        if text.strip():
            pending.append((target, text))
    if not pending:
        return errors
    if encode is None:
        encode = _document_encoder(encoder_name)
    log.info("embedding the whole text of %d lyrics files", len(pending))
    for begin in range(0, len(pending), batch_texts):
        chunk = pending[begin : begin + batch_texts]
        vectors = np.asarray(encode([text for _, text in chunk]), dtype=np.float32)
        if vectors.shape[0] != len(chunk):
            raise RuntimeError(
                f"encoder returned {vectors.shape[0]} vectors for {len(chunk)} texts"
            )
        for (target, _), vector in zip(chunk, vectors, strict=True):
            _atomic_write(target, lambda p, v=vector: np.save(p, v, allow_pickle=False), ".npy")
    return errors


def _document_encoder(name: str) -> Callable[[Sequence[str]], np.ndarray]:
    from lgfn_model.text import load_text_encoder

    encoder = load_text_encoder(name)  # float32 on the CPU, as the line embeddings are made

    def encode(texts: Sequence[str]) -> np.ndarray:
        return encoder.encode_documents(list(texts)).numpy()

    return encode
