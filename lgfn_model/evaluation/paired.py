"""Is one model really better than another on the same examples?

Two models evaluated on the same clips disagree on some of them; what decides the question is
only those discordant clips. For each label: both accuracies, the clips only A gets right
and only B gets right, the exact two-sided McNemar test on those counts, and a paired
bootstrap interval of the accuracy difference (clips resampled with replacement, both
models' outcomes on a clip kept together).
"""

from __future__ import annotations

import math
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
