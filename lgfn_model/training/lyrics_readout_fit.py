"""Fitting the lyrics read-out (``model.lyrics_readout``) on a trained model's examples.

One logistic regression per label on the whole-text vectors of the training examples that
have lyrics: the four moods (multinomial), the sign of valence, the sign of arousal. Each is
fitted on standardised vectors with an L2 penalty (``strength`` is the inverse penalty, as
scikit-learn's C; bias unpenalised), examples weighted by their dataset
(``dataset_weights``: the lyrics-only sets at 0.1 read the real songs' words best, see
docs/cross-validation.md), and the standardisation is then folded into the weights, so the
model reads raw vectors. Full-batch L-BFGS in float64: a few thousand rows of 384 values
take a second or two.

The defaults are the ones cross-validation chose (`tools.crossval_stack` with
``--features lyrics-whole``): strength 0.01, votes weighed 0.75 (mood), 0.75 (valence),
0.1 (arousal).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from lgfn_model.model.lyrics_readout import LyricsReadout
from lgfn_model.model.network import LGFN
from lgfn_model.training.cache import FeatureCache
from lgfn_model.training.datasets import MOODS, Example

log = logging.getLogger(__name__)

STRENGTH = 0.01
FUSION = (0.75, 0.75, 0.1)
"""How much each vote weighs when added to the network's log-odds: mood, valence, arousal."""
ABSENT_CLASS_LOGIT = float(np.log(1e-6))
"""The vote for a mood no training example has: as good as never (the screen's floor)."""


@dataclass(frozen=True)
class ReadoutFit:
    """The fitted votes on raw vectors, and how many examples taught each label."""

    mood_weight: np.ndarray  # (K, E)
    mood_bias: np.ndarray  # (K,)
    affect_weight: np.ndarray  # (2, E): valence, arousal
    affect_bias: np.ndarray  # (2,)
    examples: Mapping[str, int]


def _sign(value: float | None) -> int | None:
    return None if value is None or value == 0 else int(value > 0)


def fit_logistic(
    vectors: np.ndarray, classes: np.ndarray, weights: np.ndarray, strength: float, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """(W (count, E), b (count,)) of an L2 logistic regression on standardised ``vectors``,
    folded back to raw vectors: ``softmax(W x + b)``. ``count`` 1 is the binary case (one
    log-odds of class 1); otherwise multinomial over ``count`` classes, of which those no row
    has get :data:`ABSENT_CLASS_LOGIT` and no weights."""
    if strength <= 0:
        raise ValueError(f"the read-out's strength must be above 0, not {strength:g}")
    centre = vectors.mean(axis=0)
    scale = vectors.std(axis=0)
    scale[scale == 0] = 1.0  # a constant column carries nothing (scikit-learn does the same)
    x = torch.from_numpy((vectors - centre) / scale).double()
    w = torch.from_numpy(np.asarray(weights, dtype=np.float64))
    if count == 1:
        present = np.array([0])
        y = torch.from_numpy(np.asarray(classes, dtype=np.float64))
    else:
        present = np.unique(classes)
        y = torch.from_numpy(np.searchsorted(present, classes))
    outputs = 1 if count == 1 else len(present)
    weight = torch.zeros(outputs, x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(outputs, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS(
        [weight, bias],
        max_iter=1000,
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def objective() -> torch.Tensor:
        optimiser.zero_grad()
        logits = x @ weight.T + bias
        if count == 1:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                logits[:, 0], y, reduction="none"
            )
        else:
            loss = torch.nn.functional.cross_entropy(logits, y, reduction="none")
        # scikit-learn's objective: C * sum of weighted losses + |W|^2 / 2, over the weight sum.
        value = (strength * (w * loss).sum() + 0.5 * (weight**2).sum()) / w.sum()
        value.backward()
        return value

    optimiser.step(objective)
    fitted = weight.detach().numpy() / scale
    offsets = bias.detach().numpy() - fitted @ centre
    if count == 1:
        return fitted, offsets
    full_weight = np.zeros((count, vectors.shape[1]))
    full_bias = np.full(count, ABSENT_CLASS_LOGIT)
    full_weight[present] = fitted
    full_bias[present] = offsets
    return full_weight, full_bias


def fit_readout(
    rows: Sequence[tuple[Example, np.ndarray]],
    dataset_weights: Mapping[str, float] | None = None,
    strength: float = STRENGTH,
) -> ReadoutFit:
    """Fit the votes on ``rows`` (an example and its whole-text vector), each weighted by its
    dataset's ``dataset_weights`` entry (default 1; 0 leaves the set out)."""
    weights = dict(dataset_weights or {})
    present = sorted({e.dataset for e, _ in rows})
    unknown = sorted(set(weights) - set(present))
    if unknown:  # a misspelt name would otherwise weigh nothing, silently
        raise ValueError(
            f"--readout-weight names {', '.join(unknown)}: no training example with lyrics "
            f"is from it (here: {', '.join(present)})"
        )
    kept = [(e, v) for e, v in rows if weights.get(e.dataset, 1.0) > 0]
    targets = {
        "mood": lambda e: e.mood,
        "valence": lambda e: _sign(e.valence),
        "arousal": lambda e: _sign(e.arousal),
    }
    fitted: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    examples: dict[str, int] = {}
    for label, target in targets.items():
        labelled = [(v, target(e), weights.get(e.dataset, 1.0)) for e, v in kept]
        labelled = [(v, y, w) for v, y, w in labelled if y is not None]
        if len({y for _, y, _ in labelled}) < 2:
            raise ValueError(
                f"the lyrics read-out's {label} vote needs examples with lyrics of two kinds "
                f"or more; the training examples have {len(labelled)}"
            )
        examples[label] = len(labelled)
        fitted[label] = fit_logistic(
            np.stack([v for v, _, _ in labelled]).astype(np.float64),
            np.array([y for _, y, _ in labelled]),
            np.array([w for _, _, w in labelled]),
            strength,
            len(MOODS) if label == "mood" else 1,
        )
    return ReadoutFit(
        mood_weight=fitted["mood"][0],
        mood_bias=fitted["mood"][1],
        affect_weight=np.concatenate([fitted["valence"][0], fitted["arousal"][0]]),
        affect_bias=np.concatenate([fitted["valence"][1], fitted["arousal"][1]]),
        examples=examples,
    )


def require_song_text(model: LGFN) -> None:
    if not model.config.song_text:
        raise ValueError(
            f"{model.config.version}: a lyrics read-out reads the whole text's vector, "
            "which only a model trained with song_text is fed"
        )


def attach_readout(model: LGFN, fit: ReadoutFit, fusion: Sequence[float] = FUSION) -> LGFN:
    """``model`` with the read-out ``fit`` added (its config says so from now on; a read-out it
    had is replaced), its votes weighed by ``fusion`` (mood, valence, arousal)."""
    require_song_text(model)
    if len(fusion) != 3 or any(not 0 <= float(w) <= 10 for w in fusion):
        raise ValueError(f"fusion weights are three numbers 0..10, not {list(fusion)}")
    readout = LyricsReadout(len(model.config.labels), model.config.text_dim)
    values = {
        "mood_weight": fit.mood_weight,
        "mood_bias": fit.mood_bias,
        "affect_weight": fit.affect_weight,
        "affect_bias": fit.affect_bias,
        "fusion": np.asarray(fusion, dtype=np.float64),
    }
    for name, value in values.items():
        buffer = getattr(readout, name)
        buffer.copy_(torch.as_tensor(value, dtype=buffer.dtype).reshape(buffer.shape))
    device = model.mood_head.weight.device
    model.lyrics_readout = readout.to(device)
    model.config = replace(model.config, lyrics_readout=True)
    return model


def describe(
    fit: ReadoutFit,
    fusion: Sequence[float],
    dataset_weights: Mapping[str, float],
    strength: float,
) -> dict[str, object]:
    """What a checkpoint's metadata keeps of the fit."""
    return {
        "examples": dict(fit.examples),
        "strength": strength,
        "fusion": dict(zip(("mood", "valence", "arousal"), map(float, fusion), strict=True)),
        "dataset_weights": dict(dataset_weights) or None,
    }


def whole_text_rows(
    examples: Sequence[Example], cache: FeatureCache, encoder: str
) -> list[tuple[Example, np.ndarray]]:
    """Each example with lyrics and its whole-text vector, from ``cache`` (embedded first where
    missing: the vectors a ``song_text`` model's training cached). A file that cannot be read
    is skipped with a warning naming it, as training skips it."""
    from lgfn_model.training.song_text import ensure_song_text, load_song_text

    with_lyrics = [e for e in examples if e.lyrics is not None]
    errors = ensure_song_text(cache, [e.lyrics for e in with_lyrics], encoder)
    for source, reason in errors.items():
        log.warning("skipped %s: %s", source, reason)
    rows = []
    for example in with_lyrics:
        if example.lyrics in errors:
            continue
        vector = load_song_text(cache, example.lyrics, encoder)
        if vector is not None:  # a file with no text has no vector
            rows.append((example, vector))
    return rows


def readout_from_items(
    model: LGFN, items: Sequence[Any], dataset_weights: Mapping[str, float]
) -> dict[str, object]:
    """Fit and attach a read-out with the defaults on training's loaded examples (those whose
    lyrics have a whole-text vector); what the metadata keeps of it."""
    rows = [
        (item.example, item.lyrics.song)
        for item in items
        if item.lyrics is not None and item.lyrics.song is not None
    ]
    fit = fit_readout(rows, dataset_weights, STRENGTH)
    attach_readout(model, fit, FUSION)
    log.info("lyrics read-out fitted on %s examples", fit.examples)
    return describe(fit, FUSION, dict(dataset_weights), STRENGTH)
