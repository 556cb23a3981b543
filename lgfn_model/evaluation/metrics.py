"""Evaluation figures for mood, valence and arousal, with partial labels.

Truth arrays mark a missing label with ``-1`` (mood) or NaN (valence, arousal); a valence or
arousal of exactly 0 has no sign and counts as missing. Predictions are probabilities: a (n, 4)
mood distribution, P(positive valence) and P(high arousal). Every figure is computed over the
examples that carry that label; a figure that cannot be computed (no examples, or ROC-AUC with
one class only) is None, shown as ``-``.

``compute_metrics`` gives one nested dict (JSON-ready); ``format_report`` prints a plain-text
report of several such dicts (e.g. "all", "with lyrics", "without lyrics", "snr 10 dB") and
``summary_table`` a one-line-per-run table for ablations.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lgfn_model.model.config import MOODS


def _as_mood_truth(values: Sequence[int | None] | np.ndarray) -> np.ndarray:
    return np.array([-1 if v is None else int(v) for v in values], dtype=np.int64)


def _as_sign_truth(values: Sequence[float | None] | np.ndarray) -> np.ndarray:
    """+1 / -1 / 0 (missing) from values in [-1, 1], None or NaN."""
    out = np.zeros(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        if v is None:
            continue
        v = float(v)
        if math.isnan(v) or v == 0:
            continue
        out[i] = 1 if v > 0 else -1
    return out


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


def f1_per_class(matrix: np.ndarray) -> list[float | None]:
    """F1 of each class from a confusion matrix; None for a class with no true example.

    Macro-F1 averages the classes that occur in the truth: a subset without any "relaxed"
    clip is not scored 0 on "relaxed" (wrong "relaxed" predictions still lower the F1 of the
    true classes and the accuracy).
    """
    out: list[float | None] = []
    for k in range(matrix.shape[0]):
        tp = matrix[k, k]
        fp = matrix[:, k].sum() - tp
        fn = matrix[k, :].sum() - tp
        out.append(None if tp + fn == 0 else float(2 * tp / (2 * tp + fp + fn)))
    return out


def roc_auc(truth: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count half); None when only one class is present."""
    truth = np.asarray(truth, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos = int(truth.sum())
    n_neg = int(truth.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return None
    # Mann-Whitney U with average ranks for ties.
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(scores.size, dtype=np.float64)
    sorted_scores = scores[order]
    i = 0
    while i < scores.size:
        j = i
        while j + 1 < scores.size and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    u = ranks[truth].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def mood_metrics(
    truth: Sequence[int | None] | np.ndarray,
    probs: np.ndarray | None,
    labels: Sequence[str] = MOODS,
) -> dict[str, Any]:
    truth = _as_mood_truth(truth)
    keep = truth >= 0
    n = int(keep.sum())
    result: dict[str, Any] = {
        "n": n,
        "accuracy": None,
        "macro_f1": None,
        "per_class_f1": {name: None for name in labels},
        "support": {name: int((truth == k).sum()) for k, name in enumerate(labels)},
        "confusion": None,
    }
    if probs is None or n == 0:
        return result
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape != (truth.size, len(labels)):
        raise ValueError(
            f"mood probabilities have shape {probs.shape}, expected {(truth.size, len(labels))}"
        )
    predicted = probs[keep].argmax(axis=1)
    matrix = confusion_matrix(truth[keep], predicted, len(labels))
    f1 = f1_per_class(matrix)
    defined = [v for v in f1 if v is not None]
    result.update(
        accuracy=float(np.trace(matrix) / n),
        macro_f1=float(np.mean(defined)) if defined else None,
        per_class_f1=dict(zip(labels, f1, strict=True)),
        confusion=matrix.tolist(),
    )
    return result


def sign_metrics(
    truth: Sequence[float | None] | np.ndarray, p_positive: np.ndarray | None
) -> dict[str, Any]:
    """Accuracy of sign(p - 0.5) and ROC-AUC of P(positive) over the examples with a sign."""
    signs = _as_sign_truth(truth)
    keep = signs != 0
    n = int(keep.sum())
    result: dict[str, Any] = {
        "n": n,
        "n_positive": int((signs > 0).sum()),
        "accuracy": None,
        "roc_auc": None,
    }
    if p_positive is None or n == 0:
        return result
    p = np.asarray(p_positive, dtype=np.float64)
    if p.shape != (signs.size,):
        raise ValueError(f"probabilities have shape {p.shape}, expected {(signs.size,)}")
    positive = signs[keep] > 0
    result["accuracy"] = float(np.mean((p[keep] >= 0.5) == positive))
    result["roc_auc"] = roc_auc(positive, p[keep])
    return result


def compute_metrics(
    mood_truth: Sequence[int | None] | np.ndarray,
    mood_probs: np.ndarray | None,
    valence_truth: Sequence[float | None] | np.ndarray,
    p_valence: np.ndarray | None,
    arousal_truth: Sequence[float | None] | np.ndarray,
    p_arousal: np.ndarray | None,
    labels: Sequence[str] = MOODS,
) -> dict[str, Any]:
    """All figures for one set of examples (see the module docstring)."""
    return {
        "n": len(mood_truth),
        "mood": mood_metrics(mood_truth, mood_probs, labels),
        "valence": sign_metrics(valence_truth, p_valence),
        "arousal": sign_metrics(arousal_truth, p_arousal),
    }


def evaluate_examples(
    examples: Sequence[Any],
    mood_probs: np.ndarray | None,
    p_valence: np.ndarray | None,
    p_arousal: np.ndarray | None,
    subsets: Mapping[str, np.ndarray] | None = None,
    labels: Sequence[str] = MOODS,
) -> dict[str, dict[str, Any]]:
    """Figures for ``examples`` (objects with .mood/.valence/.arousal) as a whole and per subset.

    ``subsets`` maps a name to a boolean mask; by default "all", "with lyrics" and
    "without lyrics" (examples with ``has_lyrics``).
    """
    n = len(examples)
    if subsets is None:
        has = np.array([bool(getattr(e, "has_lyrics", False)) for e in examples], dtype=bool)
        subsets = {"all": np.ones(n, dtype=bool), "with lyrics": has, "without lyrics": ~has}
    mood_truth = _as_mood_truth([e.mood for e in examples])
    valence_truth = np.array(
        [np.nan if e.valence is None else e.valence for e in examples], dtype=float
    )
    arousal_truth = np.array(
        [np.nan if e.arousal is None else e.arousal for e in examples], dtype=float
    )

    def take(values: np.ndarray | None, mask: np.ndarray) -> np.ndarray | None:
        return None if values is None else np.asarray(values)[mask]

    results = {}
    for name, mask in subsets.items():
        mask = np.asarray(mask, dtype=bool)
        results[name] = compute_metrics(
            mood_truth[mask],
            take(mood_probs, mask),
            valence_truth[mask],
            take(p_valence, mask),
            arousal_truth[mask],
            take(p_arousal, mask),
            labels,
        )
    return results


def agreement(
    first: Sequence[int] | np.ndarray, second: Sequence[int] | np.ndarray
) -> float | None:
    """Share of positions where two predicted label sequences agree (robustness checks)."""
    a, b = np.asarray(first), np.asarray(second)
    if a.shape != b.shape:
        raise ValueError("agreement: sequences differ in length")
    return None if a.size == 0 else float(np.mean(a == b))


# ------------------------------------------------------------------------------------- reports


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_section(name: str, result: Mapping[str, Any], labels: Sequence[str] = MOODS) -> str:
    mood = result["mood"]
    lines = [f"== {name} (n={result['n']})"]
    lines.append(
        f"mood     n={mood['n']:<5} accuracy {_fmt(mood['accuracy'])}"
        f"  macro-F1 {_fmt(mood['macro_f1'])}"
    )
    for key in ("valence", "arousal"):
        part = result[key]
        lines.append(
            f"{key:<8} n={part['n']:<5} accuracy {_fmt(part['accuracy'])}"
            f"  ROC-AUC {_fmt(part['roc_auc'])}"
        )
    if mood["confusion"] is not None:
        width = max(8, *(len(label) + 1 for label in labels))
        lines.append("")
        lines.append(
            " " * width + "".join(f"{label:>{width}}" for label in labels) + f"{'F1':>8}{'n':>6}"
        )
        for k, label in enumerate(labels):
            row = "".join(f"{count:>{width}}" for count in mood["confusion"][k])
            lines.append(
                f"{label:<{width}}{row}{_fmt(mood['per_class_f1'][label]):>8}{mood['support'][label]:>6}"
            )
        lines.append("(rows: true mood, columns: predicted)")
    return "\n".join(lines)


def format_report(results: Mapping[str, Mapping[str, Any]], title: str | None = None) -> str:
    """Plain-text report of several named results (one section each)."""
    parts = [title] if title else []
    parts.extend(format_section(name, result) for name, result in results.items())
    return "\n\n".join(parts) + "\n"


SUMMARY_COLUMNS = (
    ("mood acc", ("mood", "accuracy")),
    ("macro-F1", ("mood", "macro_f1")),
    ("val acc", ("valence", "accuracy")),
    ("val AUC", ("valence", "roc_auc")),
    ("aro acc", ("arousal", "accuracy")),
    ("aro AUC", ("arousal", "roc_auc")),
)


def summary_table(rows: Mapping[str, Mapping[str, Any]]) -> str:
    """One line per named result: the headline figures side by side."""
    width = max([len("run"), *(len(name) for name in rows)]) + 2
    header = f"{'run':<{width}}{'n':>6}" + "".join(f"{title:>10}" for title, _ in SUMMARY_COLUMNS)
    lines = [header, "-" * len(header)]
    for name, result in rows.items():
        cells = "".join(f"{_fmt(result[a][b]):>10}" for _, (a, b) in SUMMARY_COLUMNS)
        lines.append(f"{name:<{width}}{result['n']:>6}{cells}")
    return "\n".join(lines) + "\n"


def to_json(results: Any) -> str:
    return json.dumps(results, indent=2, sort_keys=False, allow_nan=False)
