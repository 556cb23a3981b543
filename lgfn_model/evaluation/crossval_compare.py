"""`lgfn compare --crossval A B`: two cross-validated recipes, paired on the same test examples.

Two `lgfn crossval` runs over the same folds test every development example once each, so their
predictions can be paired example by example, as `lgfn compare` pairs two checkpoints on the
held-out clips. Each fold's JSON keeps its predictions (``predictions.<condition>``); here they
are pooled over the folds, split by dataset and condition (clean, each ``--snr``), and for each
label the two accuracies, the examples only one recipe gets right, the exact McNemar p-value
and a paired bootstrap 95 % interval of the difference are given
(:mod:`lgfn_model.evaluation.paired`), plus the mood macro-F1 of both with a paired bootstrap
interval of its difference (the issue's "ahead in macro-F1" needs one).

Those intervals count the test examples' sampling, not the training's luck. Given several
trainings of each recipe (``more_a`` / ``more_b``, `--also-a` / `--also-b`), each recipe is the
mean of its trainings and a second interval adds the spread between them
(:func:`~lgfn_model.evaluation.paired.several_runs_comparison`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lgfn_model.evaluation.crossval_report import DATASET_NAMES
from lgfn_model.evaluation.metrics import _as_mood_truth, mood_metrics
from lgfn_model.evaluation.paired import (
    correct_per_example,
    paired_comparison,
    paired_row,
    several_runs_comparison,
    training_spread,
    with_training_luck,
)
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
    predicted_a: np.ndarray | Sequence[np.ndarray],
    predicted_b: np.ndarray | Sequence[np.ndarray],
    labels: Sequence[str],
    samples: int = 10_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Macro-F1 of A and B on the same examples and a paired bootstrap interval of A - B.

    ``predicted_a`` / ``predicted_b`` are one training's predicted moods or a list of several
    trainings'; a recipe's macro-F1 is then the mean of its trainings', and the figures add
    each training's (``runs_a``, ``runs_b``) and an interval that counts the training luck
    (:func:`~lgfn_model.evaluation.paired.with_training_luck`)."""
    runs_a, runs_b = _as_runs(predicted_a), _as_runs(predicted_b)

    def f1(index: np.ndarray, predicted: np.ndarray) -> float:
        probs = np.eye(len(labels))[predicted[index]]
        value = mood_metrics(truth[index], probs, labels)["macro_f1"]
        return float("nan") if value is None else value

    def side(index: np.ndarray, runs: list[np.ndarray]) -> float:
        return float(np.mean([f1(index, predicted) for predicted in runs]))

    everything = np.arange(truth.size)
    each_a = [f1(everything, predicted) for predicted in runs_a]
    each_b = [f1(everything, predicted) for predicted in runs_b]
    a, b = float(np.mean(each_a)), float(np.mean(each_b))
    rng = np.random.default_rng(seed)
    differences = np.empty(samples)
    for k in range(samples):
        picks = rng.integers(0, truth.size, size=truth.size)
        differences[k] = side(picks, runs_a) - side(picks, runs_b)
    low, high = np.nanquantile(differences, [0.025, 0.975])
    out: dict[str, Any] = {
        "n": int(truth.size),
        "macro_f1_a": a,
        "macro_f1_b": b,
        "difference": a - b,
        "interval_95": [float(low), float(high)],
    }
    if len(runs_a) > 1 or len(runs_b) > 1:
        spread = training_spread(each_a, each_b)
        out.update(
            runs_a=each_a,
            runs_b=each_b,
            training_sd=spread["sd"],
            interval_95_trainings=with_training_luck(
                a - b, float(np.nanstd(differences, ddof=1)), spread, len(runs_a), len(runs_b)
            ),
        )
    return out


def _as_runs(predicted: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """One training's predictions (1-D) or several trainings' as a list of 1-D arrays."""
    if isinstance(predicted, np.ndarray) and predicted.ndim == 1:
        return [predicted]
    return [np.asarray(p) for p in predicted]


def compare_crossval(
    run_a: Path,
    run_b: Path,
    examples: Sequence[Example],
    labels: Sequence[str],
    samples: int = 10_000,
    by_label: bool = False,
    more_a: Sequence[Path] = (),
    more_b: Sequence[Path] = (),
) -> dict[str, Any]:
    """The paired comparison of two crossval folders over the folds both have done, per
    dataset, or with ``by_label`` per dataset and source label (:func:`example_groups`).

    ``more_a`` / ``more_b``: other trainings of the same two recipes (e.g. another ``--seed``)
    over the same folds; each recipe is then the mean of its trainings and the figures count
    their luck (:func:`~lgfn_model.evaluation.paired.several_runs_comparison`)."""
    runs_a, runs_b = [run_a, *more_a], [run_b, *more_b]
    results = {run: fold_results(run) for run in [*runs_a, *runs_b]}
    folds = [name for name in results[run_a] if all(name in done for done in results.values())]
    if not folds:
        names = " and ".join(str(run) for run in dict.fromkeys([*runs_a, *runs_b]))
        raise ValueError(f"{names} have no fold in common")
    by_id = {e.id: e for e in examples}
    unpaired: dict[str, list[str]] = {}
    for name in folds:
        tested = [set(_tested_ids(results[run][name])) for run in [*runs_a, *runs_b]]
        tested = [ids for ids in tested if ids]
        differing = sorted(set().union(*tested) - set.intersection(*tested)) if tested else []
        if differing:
            if not all(i in by_id and not by_id[i].has_audio for i in differing):
                raise ValueError(
                    f"{name}: the runs tested other examples in this fold (other folds, "
                    "--limit or data); only runs over the same folds can be paired"
                )
            # Lyrics without audio that one run's text reader refused (e.g. before mojibake
            # repair) and the other read: same fold, so pair the rest and say which.
            unpaired[name] = differing
    pooled_a = [pooled_predictions(run, folds, results[run]) for run in runs_a]
    pooled_b = [pooled_predictions(run, folds, results[run]) for run in runs_b]
    report: dict[str, Any] = {
        "a": str(run_a),
        "b": str(run_b),
        "folds": folds,
        "unpaired": unpaired,
        "conditions": {},
    }
    if more_a or more_b:
        report["runs_a"] = [str(run) for run in runs_a]
        report["runs_b"] = [str(run) for run in runs_b]
    everyone = [*pooled_a, *pooled_b]
    for condition in [c for c in pooled_a[0] if all(c in pooled for pooled in everyone)]:
        shared = [i for i in pooled_a[0][condition] if all(i in p[condition] for p in everyone)]
        missing = [i for i in shared if i not in by_id]
        if missing:
            raise ValueError(
                f"{len(missing)} tested examples (e.g. {missing[0]}) are not in the data given "
                "with --data; give the data root the runs were trained on"
            )
        report["conditions"][condition] = {
            group: _compare_one(
                [by_id[i] for i in ids],
                [[pooled[condition][i] for i in ids] for pooled in pooled_a],
                [[pooled[condition][i] for i in ids] for pooled in pooled_b],
                labels,
                samples,
            )
            for group, ids in example_groups(shared, by_id, by_label).items()
        }
    return report


def _tested_ids(result: dict[str, Any]) -> list[str]:
    return result.get("predictions", {}).get("clean", {}).get("id", [])


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
    runs_a: list[list[Any]],
    runs_b: list[list[Any]],
    labels: Sequence[str],
    samples: int,
) -> dict[str, Any]:
    """One group's figures; ``runs_a`` / ``runs_b`` hold each training's rows
    (probs, P(valence), P(arousal)) in the order of ``examples``."""
    outcomes: list[list[dict[str, np.ndarray]]] = [[], []]
    predicted: list[list[np.ndarray]] = [[], []]
    for side, runs in enumerate((runs_a, runs_b)):
        for rows in runs:
            probs = np.array([r[0] for r in rows], dtype=np.float64)
            valence = np.array([r[1] for r in rows], dtype=np.float64)
            arousal = np.array([r[2] for r in rows], dtype=np.float64)
            outcomes[side].append(correct_per_example(examples, probs, valence, arousal))
            predicted[side].append(probs.argmax(axis=1))
    if len(runs_a) == 1 and len(runs_b) == 1:
        out: dict[str, Any] = {
            label: paired_comparison(outcomes[0][0][label], outcomes[1][0][label], samples)
            for label in LABELS
        }
    else:
        out = {
            label: several_runs_comparison(
                np.stack([o[label] for o in outcomes[0]]),
                np.stack([o[label] for o in outcomes[1]]),
                samples,
            )
            for label in LABELS
        }
    truth = _as_mood_truth([e.mood for e in examples])
    keep = truth >= 0
    # Macro-F1 over a single true mood (one MIREX cluster) says nothing the accuracy does not.
    if np.unique(truth[keep]).size > 1:
        out["macro_f1"] = macro_f1_comparison(
            truth[keep],
            [p[keep] for p in predicted[0]],
            [p[keep] for p in predicted[1]],
            labels,
            samples,
        )
    return out


def format_crossval_comparison(report: dict[str, Any]) -> str:
    several = "runs_a" in report
    lines = [
        _side_line("A", report["a"], report.get("runs_a")),
        _side_line("B", report["b"], report.get("runs_b")),
        f"paired over {len(report['folds'])} fold(s): {', '.join(report['folds'])}",
    ]
    for name, ids in report.get("unpaired", {}).items():
        lines.append(
            f"{name}: {len(ids)} lyrics-only example(s) tested by one run only, left out: "
            + ", ".join(ids[:5])
            + (" ..." if len(ids) > 5 else "")
        )
    if several:
        lines.append(
            "each recipe is the mean of its trainings; more A / more B: examples more of A's "
            "(B's) trainings get right; sd: one training's luck, pooled over both recipes; the "
            "last interval counts it beside the examples' sampling"
        )
        header = (
            f"  {'label':<11} {'n':>5} {'A':>6} {'B':>6} {'A-B':>7} {'more A':>6} {'more B':>6} "
            f"{'sd':>6}  {'95 %, examples':<17} 95 %, with trainings"
        )
    else:
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
                if several:
                    lines.extend(_several_rows(f"{label} acc", r, "accuracy"))
                else:
                    lines.append("  " + paired_row(f"{label} acc", r, name_width=11, n_width=5))
            f1 = figures.get("macro_f1")
            if f1 is not None and several:
                lines.extend(_several_rows("mood F1", f1, "macro_f1"))
            elif f1 is not None:
                low, high = f1["interval_95"]
                lines.append(
                    f"  {'mood F1':<11} {f1['n']:>5} {f1['macro_f1_a']:>6.3f} "
                    f"{f1['macro_f1_b']:>6.3f} {f1['difference']:>+7.3f} {'':>6} {'':>6} "
                    f"{'':>9}  [{low:+.3f}, {high:+.3f}]"
                )
    return "\n".join(lines)


def _side_line(side: str, first: str, runs: list[str] | None) -> str:
    if not runs or len(runs) == 1:
        return f"{side} = {first}" + (" (one training)" if runs else "")
    return f"{side} = the mean of {len(runs)} trainings: {', '.join(runs)}"


def _several_rows(name: str, r: dict[str, Any], figure: str) -> list[str]:
    """Two lines of a several-trainings report: the figures, then each training's."""
    low, high = r["interval_95"]
    sd = "-" if r.get("training_sd") is None else f"{r['training_sd']:.3f}"
    both = r.get("interval_95_trainings")
    with_luck = "-" if both is None else f"[{both[0]:+.3f}, {both[1]:+.3f}]"
    more = f"{r['only_a']:>6} {r['only_b']:>6}" if "only_a" in r else f"{'':>6} {'':>6}"
    each_a = " ".join(f"{x:.3f}" for x in r.get("runs_a") or [r[f"{figure}_a"]])
    each_b = " ".join(f"{x:.3f}" for x in r.get("runs_b") or [r[f"{figure}_b"]])
    return [
        f"  {name:<11} {r['n']:>5} {r[f'{figure}_a']:>6.3f} {r[f'{figure}_b']:>6.3f} "
        f"{r['difference']:>+7.3f} {more} {sd:>6}  [{low:+.3f}, {high:+.3f}]  {with_luck}",
        f"  {'':<11} {'':>5} each training: A {each_a} | B {each_b}",
    ]
