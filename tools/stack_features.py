"""One vector per development example from a frozen source, for `tools.crossval_stack`.

Sources (``--features``):

- ``lyrics``: the mean of the lyrics file's line vectors (multilingual-e5-small, the encoder LGFN
  reads), L2-normalised; read from the feature cache `lgfn crossval` fills.
- ``lyrics-whole``: one e5 vector of the lyrics file's whole text, its lines joined and read
  together (windowed over 512 tokens; LGFN embeds every line alone): the vector a model with
  ``song_text`` reads, from the same cache (``song-<encoder>/``, filled by ``lgfn crossval`` with
  ``--set song_text=true`` or here where missing, about 0.4 s a file on one core).
- ``musicnn-jamendo``: the Jamendo musicnn's 200-d patch features as the branch caches them
  (``pretrained_audio: "musicnn-jamendo"``), mean and spread over the clip's patches.
- ``fcn``, ``crnn``: the MTG-Jamendo FCN-5 and CRNN taggers (shipped in ``lgfn_model/weights``)
  on two evenly spaced 29 s crops of the cached clip, as upstream tags a track: the last dense
  layer's input and the 50 tag logits, averaged over the crops. Computed once and kept in the
  cache folder (``stack-<source>-v1/``), about 0.5 s a clip on one core.

Examples the source has nothing for (no lyrics, no audio, not cached) are left out; the stack
keeps the recipe's own prediction for them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from lgfn_model.training.cache import FeatureCache
from lgfn_model.training.datasets import Example

log = logging.getLogger(__name__)

SOURCES = ("lyrics", "lyrics-whole", "musicnn-jamendo", "fcn", "crnn")
LYRICS_ENCODER = "multilingual-e5-small"
TAGGER_CROPS = 2
VERSION = "1"


def clip_features(
    source: str, examples: Sequence[Example], cache: FeatureCache
) -> dict[str, np.ndarray]:
    """{example id: vector} for every example ``source`` has something for."""
    if source == "lyrics":
        return _lyrics(examples, cache)
    if source == "lyrics-whole":
        return lyrics_whole(examples, cache)
    if source == "musicnn-jamendo":
        return _jamendo_branch(examples, cache)
    if source in ("fcn", "crnn"):
        return _tagger(source, examples, cache)
    raise ValueError(f"unknown feature source {source!r}; expected one of {SOURCES}")


def _keep(stored: Path, vector: np.ndarray) -> None:
    """Write ``vector`` to ``stored`` whole or not at all (a stopped run leaves no half file)."""
    temporary = stored.with_suffix(".tmp.npy")
    np.save(temporary, vector)
    temporary.replace(stored)


def _from_cache(
    examples: Sequence[Example],
    source_of: Callable[[Example], Path | None],
    summarise: Callable[[Path], np.ndarray | None],
    hint: str,
) -> dict[str, np.ndarray]:
    """``summarise(source)`` of every example that has a source; those not cached are counted
    and named in one warning (``hint`` says what fills the cache)."""
    out: dict[str, np.ndarray] = {}
    missing = 0
    for example in examples:
        source = source_of(example)
        if source is None:
            continue
        try:
            vector = summarise(source)
        except FileNotFoundError:
            missing += 1
            continue
        if vector is not None:
            out[example.id] = vector
    if missing:
        log.warning("%d examples are not in the cache (%s)", missing, hint)
    return out


def _lyrics(examples: Sequence[Example], cache: FeatureCache) -> dict[str, np.ndarray]:
    def mean_line(source: Path) -> np.ndarray | None:
        lines = cache.load_lyrics(source, LYRICS_ENCODER).embeddings
        if not len(lines):
            return None
        mean = lines.mean(axis=0)
        return mean / max(float(np.linalg.norm(mean)), 1e-12)

    return _from_cache(examples, lambda e: e.lyrics, mean_line, "run lgfn crossval first")


def lyrics_whole(examples: Sequence[Example], cache: FeatureCache) -> dict[str, np.ndarray]:
    """{example id: e5 vector of the lyrics file's whole text}: the vector a ``song_text`` model
    reads and its lyrics read-out is fitted on, from the same cache (``song-<encoder>/``),
    embedded first where it is missing (``lyrics_readout_fit.whole_text_rows``)."""
    from lgfn_model.training.lyrics_readout_fit import whole_text_rows

    return {e.id: vector for e, vector in whole_text_rows(examples, cache, LYRICS_ENCODER)}


def _jamendo_branch(examples: Sequence[Example], cache: FeatureCache) -> dict[str, np.ndarray]:
    from lgfn_model.training.pretrained_cache import PretrainedFeatureCache

    branch = PretrainedFeatureCache(cache, "musicnn-jamendo")

    def mean_and_spread(source: Path) -> np.ndarray:
        patches = branch.load(source).astype(np.float32)
        return np.concatenate([patches.mean(axis=0), patches.std(axis=0)])

    hint = "run lgfn crossval with --set pretrained_audio='\"musicnn-jamendo\"' first"
    return _from_cache(examples, lambda e: e.audio, mean_and_spread, hint)


def _tagger(name: str, examples: Sequence[Example], cache: FeatureCache) -> dict[str, np.ndarray]:
    import torch

    from lgfn_model.pretrained import load_jamendo_tagger
    from lgfn_model.pretrained.jamendo_input import crops

    folder = cache.root / f"stack-{name}-v{VERSION}"
    out: dict[str, np.ndarray] = {}
    todo: list[tuple[Example, str]] = []
    for example in examples:
        if example.audio is None:
            continue
        key = cache.audio_file(example.audio).stem
        stored = folder / f"{key}.npy"
        if stored.is_file():
            out[example.id] = np.load(stored, allow_pickle=False)
        else:
            todo.append((example, key))
    if not todo:
        return out
    log.info("computing %s features of %d clips (kept in %s)", name, len(todo), folder)
    folder.mkdir(parents=True, exist_ok=True)
    tagger = load_jamendo_tagger(name)
    started = time.perf_counter()
    with torch.inference_mode():
        for done, (example, key) in enumerate(todo, 1):
            samples = cache.load_audio(example.audio).astype(np.float32)
            outputs = tagger(crops(torch.from_numpy(samples), tagger.input_length, TAGGER_CROPS))
            tags = outputs["tags"].double().clamp(1e-6, 1 - 1e-6)
            vector = (
                torch.cat([outputs["embedding"].double().mean(0), torch.logit(tags).mean(0)])
                .numpy()
                .astype(np.float32)
            )
            _keep(folder / f"{key}.npy", vector)
            out[example.id] = vector
            if done % 200 == 0:
                rate = done / (time.perf_counter() - started)
                log.info("  %d/%d clips (%.1f clips/s)", done, len(todo), rate)
    return out
