"""What a model reads of each lyrics file in training, from the feature cache.

Three kinds of input, by the model's config:

- the lines, each read alone (``FeatureCache.ensure_lyrics``, ``lyrics-<encoder>/``);
- with ``song_text``, also the whole text's vector (``training.song_text``, ``song-<encoder>/``);
- with ``line_context``, the lines read in the context of the whole text, one pass a file
  (``LyricsEncoder.encode_in_context``), cached in the lines' format under the encoder name with
  ``+context`` (``lyrics-<encoder>_context/``). Each entry also holds that pass's whole-text
  vector (``song``), equal to ``encode_documents`` of the joined lines, so a model with both
  options needs nothing more.

Every vector is what the predictor computes for the same file (``Predictor._encode_lyrics``), so
a model trains on what it will be given.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from lgfn_model.training.cache import FeatureCache, LyricFeatures, _atomic_write, _save_npz
from lgfn_model.training.song_text import ensure_song_text, load_song_text

log = logging.getLogger(__name__)

IN_CONTEXT_SUFFIX = "+context"

EncodeInContext = Callable[[Sequence[str]], tuple[np.ndarray, np.ndarray]]
"""Lines -> (each line's vector in context (N, dim), the whole text's vector (dim,))."""


def in_context_name(encoder_name: str) -> str:
    """The cache's name for ``encoder_name``'s lines read in context."""
    return encoder_name + IN_CONTEXT_SUFFIX


def ensure_lyric_inputs(
    cache: FeatureCache,
    sources: Iterable[str | os.PathLike[str]],
    encoder_name: str,
    *,
    song_text: bool = False,
    line_context: bool = False,
) -> dict[Path, str]:
    """Fill the cache with what such a model reads of each file; returns {source: error}."""
    sources = list(sources)
    if line_context:
        return ensure_lines_in_context(cache, sources, encoder_name)
    errors = cache.ensure_lyrics(sources, encoder_name)
    if song_text:
        errors |= ensure_song_text(cache, sources, encoder_name)
    return errors


def load_lyric_inputs(
    cache: FeatureCache,
    source: str | os.PathLike[str],
    encoder_name: str,
    *,
    song_text: bool = False,
    line_context: bool = False,
) -> LyricFeatures:
    """What such a model reads of ``source``, from the cache ``ensure_lyric_inputs`` filled."""
    if line_context:
        return cache.load_lyrics(source, in_context_name(encoder_name))
    lyrics = cache.load_lyrics(source, encoder_name)
    if song_text:
        lyrics = replace(lyrics, song=load_song_text(cache, source, encoder_name))
    return lyrics


def ensure_lines_in_context(
    cache: FeatureCache,
    sources: Iterable[str | os.PathLike[str]],
    encoder_name: str,
    encode: EncodeInContext | None = None,
) -> dict[Path, str]:
    """Read the lines of every lyrics file not yet cached in context; returns {source: error}.

    ``encode`` reads one file's lines; by default the project's text encoder ``encoder_name``
    (float32 on the CPU, as the other caches are made; loaded only when something is missing).
    """
    pending, errors = cache.lyrics_to_embed(sources, in_context_name(encoder_name))
    if not pending:
        return errors
    if encode is None:
        encode = _encoder_in_context(encoder_name)
    log.info("reading the lines of %d lyrics files in context", len(pending))
    for _source, target, texts, starts in pending:
        song = None
        if texts:
            lines, whole = encode(texts)
            embeddings = np.asarray(lines, dtype=np.float32)
            if embeddings.shape[0] != len(texts):
                raise RuntimeError(
                    f"encoder returned {embeddings.shape[0]} vectors for {len(texts)} lines"
                )
            song = np.asarray(whole, dtype=np.float32) if "".join(texts).strip() else None
        else:
            embeddings = np.zeros((0, 0), dtype=np.float32)
        stored = embeddings.astype(np.float16)
        _atomic_write(target, lambda p, e=stored, s=starts, w=song: _save_npz(p, e, s, w), ".npz")
    return errors


def _encoder_in_context(name: str) -> EncodeInContext:
    from lgfn_model.text import load_text_encoder

    encoder = load_text_encoder(name)

    def encode(lines: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        vectors, whole = encoder.encode_in_context(list(lines))
        return vectors.numpy(), whole.numpy()

    return encode
