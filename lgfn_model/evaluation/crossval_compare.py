"""`lgfn compare --crossval A B`: two cross-validated recipes, paired on the same test examples.

Two `lgfn crossval` runs over the same folds test every development example once each, so their
predictions can be paired example by example, as `lgfn compare` pairs two checkpoints on the
held-out clips. Each fold's JSON keeps its predictions (``predictions.<condition>``); here they
are pooled over the folds, split by dataset and condition (clean, each ``--snr``), and for each
label the two accuracies, the examples only one recipe gets right, the exact McNemar p-value
and a paired bootstrap 95 % interval of the difference are given
(:mod:`lgfn_model.evaluation.paired`), plus the mood macro-F1 of both with a paired bootstrap
interval of its difference (the issue's "ahead in macro-F1" needs one).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lgfn_model.evaluation.crossval_report import DATASET_NAMES
from lgfn_model.evaluation.metrics import _as_mood_truth, mood_metrics
from lgfn_model.evaluation.paired import correct_per_example, paired_comparison, paired_row
from lgfn_model.training.datasets import Example

LABELS = ("mood", "valence", "arousal")


def fold_results(run: Path) -> dict[str, dict[str, Any]]:
    """The fold results of a `lgfn crossval --out` folder, by file stem (fold-1, leave-out-4q)."""
    files = sorted([*run.glob("fold-*.json"), *run.glob("leave-out-*.json")])
    if not files:
        raise ValueError(f"{run}: no fold results (fold-<i>.json) in this folder")
    return {path.stem: json.loads(path.read_text()) for path in files}


def pooled_predictions(
    run: Path, folds: Sequence[str], results: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """{condition: {id: (probs, p_valence, p_arousal)}} over ``folds`` of ``run``."""
    pooled: dict[str, dict[str, Any]] = {}
    for name in folds:
        stored = results[name].get("predictions")
        if stored is None:
            raise ValueError(
                f"{run / (name + '.json')}: measured before fold results kept their "
                "predictions; delete it and rerun that fold to compare it"
            )
        for condition, part in stored.items():
            rows = zip(part["id"], part["probs"], part["p_valence"], part["p_arousal"], strict=True)
            target = pooled.setdefault(condition, {})
            for example_id, probs, valence, arousal in rows:
                target[example_id] = (probs, valence, arousal)
    return pooled


def macro_f1_comparison(
    truth: np.ndarray,
    predicted_a: np.ndarray,
    predicted_b: np.ndarray,
    labels: Sequence[str],
    samples: int = 10_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Macro-F1 of A and B on the same examples and a paired bootstrap interval of A - B."""

    def f1(index: np.ndarray, predicted: np.ndarray) -> float:
        probs = np.eye(len(labels))[predicted[index]]
        value = mood_metrics(truth[index], probs, labels)["macro_f1"]
        return float("nan") if value is None else value

    everything = np.arange(truth.size)
    a, b = f1(everything, predicted_a), f1(everything, predicted_b)
    rng = np.random.default_rng(seed)
    differences = np.empty(samples)
    for k in range(samples):
        picks = rng.integers(0, truth.size, size=truth.size)
        differences[k] = f1(picks, predicted_a) - f1(picks, predicted_b)
    low, high = np.nanquantile(differences, [0.025, 0.975])
    return {
        "n": int(truth.size),
        "macro_f1_a": a,
        "macro_f1_b": b,
        "difference": a - b,
        "interval_95": [float(low), float(high)],
    }


def compare_crossval(
    run_a: Path,
    run_b: Path,
    examples: Sequence[Example],
    labels: Sequence[str],
    samples: int = 10_000,
    by_label: bool = False,
) -> dict[str, Any]:
    """The paired comparison of two crossval folders over the folds both have done, per
    dataset, or with ``by_label`` per dataset and source label (:func:`example_groups`)."""
    results_a, results_b = fold_results(run_a), fold_results(run_b)
    folds = [name for name in results_a if name in results_b]
    if not folds:
        raise ValueError(f"{run_a} and {run_b} have no fold in common")
    by_id = {e.id: e for e in examples}
    unpaired: dict[str, list[str]] = {}
    for name in folds:
        ids_a = set(results_a[name].get("predictions", {}).get("clean", {}).get("id", []))
        ids_b = set(results_b[name].get("predictions", {}).get("clean", {}).get("id", []))
        if ids_a and ids_b and ids_a != ids_b:
            differing = sorted(ids_a ^ ids_b)
            if not all(i in by_id and not by_id[i].has_audio for i in differing):
                raise ValueError(
                    f"{name}: the two runs tested other examples in this fold (other folds, "
                    "--limit or data); only runs over the same folds can be paired"
                )
            # Lyrics without audio that one run's text reader refused (e.g. before mojibake
            # repair) and the other read: same fold, so pair the rest and say which.
            unpaired[name] = differing
    pooled_a = pooled_predictions(run_a, folds, results_a)
    pooled_b = pooled_predictions(run_b, folds, results_b)
    report: dict[str, Any] = {
        "a": str(run_a),
        "b": str(run_b),
        "folds": folds,
        "unpaired": unpaired,
        "conditions": {},
    }
    for condition in [c for c in pooled_a if c in pooled_b]:
        shared = [i for i in pooled_a[condition] if i in pooled_b[condition]]
        missing = [i for i in shared if i not in by_id]
        if missing:
            raise ValueError(
                f"{len(missing)} tested examples (e.g. {missing[0]}) are not in the data given "
                "with --data; give the data root both runs were trained on"
            )
        report["conditions"][condition] = {
            group: _compare_one(
                [by_id[i] for i in ids],
                [pooled_a[condition][i] for i in ids],
                [pooled_b[condition][i] for i in ids],
                labels,
                samples,
            )
            for group, ids in example_groups(shared, by_id, by_label).items()
        }
    return report


def example_groups(
    ids: Sequence[str], by_id: dict[str, Example], by_label: bool
) -> dict[str, list[str]]:
    """``ids`` by dataset (``mirex``), or with ``by_label`` by dataset and the source's own
    label (``mirex/cluster3``, ``4q/Q2``, ``nju/sad``): where in a dataset two recipes differ."""
    datasets = [*DATASET_NAMES, *sorted({by_id[i].dataset for i in ids} - set(DATASET_NAMES))]
    groups: dict[str, list[str]] = {}
    for dataset in datasets:
        members = [i for i in ids if by_id[i].dataset == dataset]
        if members and not by_label:
            groups[dataset] = members
        elif members:
            for label in sorted({by_id[i].label for i in members}):
                groups[f"{dataset}/{label}"] = [i for i in members if by_id[i].label == label]
    return groups


def group_name(group: str) -> str:
    """``mirex/cluster3`` -> ``MIREX-like, cluster3``."""
    dataset, _, label = group.partition("/")
    name = DATASET_NAMES.get(dataset, dataset)
    return f"{name}, {label}" if label else name


def _compare_one(
    examples: list[Example],
    rows_a: list[Any],
    rows_b: list[Any],
    labels: Sequence[str],
    samples: int,
) -> dict[str, Any]:
    outcomes = []
    predicted = []
    for rows in (rows_a, rows_b):
        probs = np.array([r[0] for r in rows], dtype=np.float64)
        valence = np.array([r[1] for r in rows], dtype=np.float64)
        arousal = np.array([r[2] for r in rows], dtype=np.float64)
        outcomes.append(correct_per_example(examples, probs, valence, arousal))
        predicted.append(probs.argmax(axis=1))
    out: dict[str, Any] = {
        label: paired_comparison(outcomes[0][label], outcomes[1][label], samples)
        for label in LABELS
    }
    truth = _as_mood_truth([e.mood for e in examples])
    keep = truth >= 0
    # Macro-F1 over a single true mood (one MIREX cluster) says nothing the accuracy does not.
    if np.unique(truth[keep]).size > 1:
        out["macro_f1"] = macro_f1_comparison(
            truth[keep], predicted[0][keep], predicted[1][keep], labels, samples
        )
    return out


def format_crossval_comparison(report: dict[str, Any]) -> str:
    lines = [
        f"A = {report['a']}",
        f"B = {report['b']}",
        f"paired over {len(report['folds'])} fold(s): {', '.join(report['folds'])}",
    ]
    for name, ids in report.get("unpaired", {}).items():
        lines.append(
            f"{name}: {len(ids)} lyrics-only example(s) tested by one run only, left out: "
            + ", ".join(ids[:5])
            + (" ..." if len(ids) > 5 else "")
        )
    header = (
        f"  {'label':<11} {'n':>5} {'A':>6} {'B':>6} {'A-B':>7} {'only A':>6} {'only B':>6} "
        f"{'McNemar p':>9}  95 % interval of A-B"
    )
    for condition, datasets in report["conditions"].items():
        lines.append(f"-- {condition.replace('_', ' ')}")
        for group, figures in datasets.items():
            lines.append(group_name(group))
            lines.append(header)
            for label in LABELS:
                r = figures[label]
                if not r["n"]:
                    continue
                lines.append("  " + paired_row(f"{label} acc", r, name_width=11, n_width=5))
            f1 = figures.get("macro_f1")
            if f1 is not None:
                low, high = f1["interval_95"]
                lines.append(
                    f"  {'mood F1':<11} {f1['n']:>5} {f1['macro_f1_a']:>6.3f} "
                    f"{f1['macro_f1_b']:>6.3f} {f1['difference']:>+7.3f} {'':>6} {'':>6} "
                    f"{'':>9}  [{low:+.3f}, {high:+.3f}]"
                )
    return "\n".join(lines)
