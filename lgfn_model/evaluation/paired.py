"""Is one model really better than another on the same examples?

Two models evaluated on the same clips disagree on some of them; what decides the question is
only those discordant clips. For each label: both accuracies, the clips only A gets right
and only B gets right, the exact two-sided McNemar test on those counts, and a paired
bootstrap interval of the accuracy difference (clips resampled with replacement, both
models' outcomes on a clip kept together).

One training of a recipe is one draw of its luck: trained again (another seed, other float
rounding) it gets other clips right. With several trainings a side
(:func:`several_runs_comparison`) the spread of their figures on the same clips gives that luck,
and a second interval counts it beside the clips' sampling.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def mcnemar_exact_p(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: binomial test of ``only_a`` of the discordant clips
    against one half. 1.0 when the models never disagree."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
    return min(1.0, 2.0 * tail)


def bootstrap_interval(
    correct_a: np.ndarray,
    correct_b: np.ndarray,
    samples: int = 10_000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Paired bootstrap interval of accuracy(A) - accuracy(B)."""
    a = np.asarray(correct_a, dtype=np.float64)
    b = np.asarray(correct_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("bootstrap_interval: the two outcome vectors differ in shape")
    if a.size == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, a.size, size=(samples, a.size))
    differences = (a - b)[picks].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(differences, [tail, 1.0 - tail])
    return (float(low), float(high))


def paired_comparison(
    correct_a: np.ndarray, correct_b: np.ndarray, samples: int = 10_000, seed: int = 0
) -> dict[str, Any]:
    """Figures for two boolean vectors: did A / B get each example right."""
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError("paired_comparison: the two outcome vectors differ in shape")
    only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
    n = int(a.size)
    low, high = bootstrap_interval(a, b, samples, seed)
    return {
        "n": n,
        "accuracy_a": float(a.mean()) if n else None,
        "accuracy_b": float(b.mean()) if n else None,
        "difference": float(a.mean() - b.mean()) if n else None,
        "only_a": only_a,
        "only_b": only_b,
        "mcnemar_p": mcnemar_exact_p(only_a, only_b),
        "interval_95": [low, high] if n else None,
    }


def paired_row(name: str, figures: dict[str, Any], name_width: int, n_width: int) -> str:
    """One line of a paired report: ``paired_comparison``'s figures under the reports' header
    (n, A, B, A-B, only A, only B, McNemar p, the interval)."""
    low, high = figures["interval_95"]
    return (
        f"{name:<{name_width}} {figures['n']:>{n_width}} {figures['accuracy_a']:>6.3f} "
        f"{figures['accuracy_b']:>6.3f} {figures['difference']:>+7.3f} {figures['only_a']:>6} "
        f"{figures['only_b']:>6} {figures['mcnemar_p']:>9.3f}  [{low:+.3f}, {high:+.3f}]"
    )


def correct_per_example(
    examples: Any, mood_probs: np.ndarray, p_valence: np.ndarray, p_arousal: np.ndarray
) -> dict[str, np.ndarray]:
    """For each label, a boolean vector over the examples that carry it: predicted right?

    The same rules as the figures of ``metrics`` (mood: arg-max; valence and arousal: the sign
    of P - 0.5), so the accuracies here are exactly those of ``lgfn evaluate``."""
    from lgfn_model.evaluation.metrics import _as_mood_truth, _as_sign_truth

    mood = _as_mood_truth([e.mood for e in examples])
    out = {"mood": np.asarray(mood_probs).argmax(axis=1)[mood >= 0] == mood[mood >= 0]}
    for name, p in (("valence", p_valence), ("arousal", p_arousal)):
        signs = _as_sign_truth([getattr(e, name) for e in examples])
        keep = signs != 0
        out[name] = (np.asarray(p)[keep] >= 0.5) == (signs[keep] > 0)
    return out


# Two-sided 95 % quantile of the normal distribution: the trainings' term is added to the
# examples' as a variance, so the combined interval is a normal one around the difference.
_Z95 = 1.959963984540054


def training_spread(per_run_a: Sequence[float], per_run_b: Sequence[float]) -> dict[str, Any]:
    """How much one training's figure moves with its luck, pooled over both recipes.

    Each side's trainings are measured on the same examples, so the spread of their figures is
    training luck alone (seed, float rounding), not the examples' sampling. The variance is
    pooled over the sides that have two or more trainings (both recipes assumed about as
    lucky), so a recipe trained once still gets the other's estimate. ``sd`` is None when
    neither side has two trainings; ``df`` says how little it rests on (one per extra run).
    """
    squares, df = 0.0, 0
    for figures in (per_run_a, per_run_b):
        values = np.asarray(figures, dtype=np.float64)
        if values.size > 1:
            squares += float(((values - values.mean()) ** 2).sum())
            df += values.size - 1
    sd = math.sqrt(squares / df) if df else None
    return {"sd": sd, "df": df}


def with_training_luck(
    difference: float, examples_sd: float, spread: dict[str, Any], runs_a: int, runs_b: int
) -> list[float] | None:
    """95 % interval of the difference of the two recipes' mean figures that counts both the
    examples' sampling (``examples_sd``, from the paired bootstrap) and the training luck of
    the mean of ``runs_a`` and ``runs_b`` trainings (:func:`training_spread`)."""
    if spread["sd"] is None:
        return None
    half = _Z95 * math.sqrt(examples_sd**2 + spread["sd"] ** 2 * (1 / runs_a + 1 / runs_b))
    return [difference - half, difference + half]


def several_runs_comparison(
    correct_a: np.ndarray, correct_b: np.ndarray, samples: int = 10_000, seed: int = 0
) -> dict[str, Any]:
    """Two recipes, each trained one or more times, on the same examples.

    ``correct_a`` is (trainings of A, examples), ``correct_b`` likewise: did each training get
    each example right. A recipe's accuracy is the mean of its trainings'; per example the
    share of its trainings that got it right is what is paired. ``interval_95`` resamples the
    examples only (as :func:`paired_comparison`); ``interval_95_trainings`` adds the training
    luck (:func:`with_training_luck`). ``only_a`` / ``only_b`` count the examples where more of
    A's (B's) trainings are right; McNemar's test needs one outcome a side and is not given.
    """
    a = np.atleast_2d(np.asarray(correct_a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(correct_b, dtype=np.float64))
    if a.shape[1] != b.shape[1]:
        raise ValueError("several_runs_comparison: the two recipes were tested on other examples")
    n = int(a.shape[1])
    per_run_a, per_run_b = a.mean(axis=1), b.mean(axis=1)
    share_a, share_b = a.mean(axis=0), b.mean(axis=0)
    out: dict[str, Any] = {
        "n": n,
        "runs_a": [float(x) for x in per_run_a] if n else None,
        "runs_b": [float(x) for x in per_run_b] if n else None,
        "accuracy_a": float(per_run_a.mean()) if n else None,
        "accuracy_b": float(per_run_b.mean()) if n else None,
        "difference": float(per_run_a.mean() - per_run_b.mean()) if n else None,
        "only_a": int((share_a > share_b).sum()),
        "only_b": int((share_b > share_a).sum()),
        "mcnemar_p": None,
        "interval_95": None,
        "training_sd": None,
        "interval_95_trainings": None,
    }
    if not n:
        return out
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(samples, n))
    differences = (share_a - share_b)[picks].mean(axis=1)
    low, high = np.quantile(differences, [0.025, 0.975])
    spread = training_spread(per_run_a, per_run_b)
    out["interval_95"] = [float(low), float(high)]
    out["training_sd"] = spread["sd"]
    out["interval_95_trainings"] = with_training_luck(
        out["difference"], float(differences.std(ddof=1)), spread, a.shape[0], b.shape[0]
    )
    return out
