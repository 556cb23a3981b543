"""Cross-validation results in one report: each figure's mean and spread over the folds, per
dataset, and the table that ``lgfn crossval`` prints."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

#: The datasets reported, in table order, with their names in the table.
DATASET_NAMES = {
    "mirex": "MIREX-like",
    "4q": "4Q",
    "nju": "NJU (lyrics)",
    "moodylyrics": "MoodyLyrics4Q (lyrics)",
}
#: (table name, JSON path) of every figure; the same columns `lgfn evaluate` summarises.
METRICS = (
    ("mood acc", ("mood", "accuracy")),
    ("mood macro-F1", ("mood", "macro_f1")),
    ("valence acc", ("valence", "accuracy")),
    ("valence AUC", ("valence", "roc_auc")),
    ("arousal acc", ("arousal", "accuracy")),
    ("arousal AUC", ("arousal", "roc_auc")),
)


def _get(result: dict[str, Any], path: tuple[str, str]) -> Any:
    return result[path[0]][path[1]]


def summarise(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sample standard deviation (None for one fold), min and max of the fold values."""
    if not values:
        return {"mean": None, "sd": None, "min": None, "max": None}
    mean = sum(values) / len(values)
    sd = None
    if len(values) > 1:
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return {"mean": mean, "sd": sd, "min": min(values), "max": max(values)}


def aggregate(folds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """{condition: {dataset: {metric: mean/sd/min/max/n/folds}}} over the folds' figures.

    ``n`` is the number of examples carrying that label over all folds (each is tested once),
    ``values`` the per-fold figures; a fold where a figure is undefined (no such examples, or
    AUC with one class) does not count for it.
    """
    conditions = [k for k in (folds[0] if folds else {}) if k == "clean" or k.startswith("snr_")]
    out: dict[str, Any] = {}
    for condition in conditions:
        present = [f[condition] for f in folds if condition in f]
        names = list(dict.fromkeys(name for part in present for name in part))
        out[condition] = {name: _dataset_summary(present, name) for name in names}
    return out


def _dataset_summary(parts: Sequence[dict[str, Any]], name: str) -> dict[str, Any]:
    results = [p[name] for p in parts if name in p]
    summary: dict[str, Any] = {"n": sum(r["n"] for r in results)}
    for title, path in METRICS:
        values = [_get(r, path) for r in results if _get(r, path) is not None]
        labelled = sum(r[path[0]]["n"] for r in results)
        summary[title] = {**summarise(values), "n": labelled, "values": values}
    return summary


def format_table(report: dict[str, Any]) -> str:
    """One row per dataset and metric: mean, sd, min-max over folds, examples, folds."""
    lines = [
        f"cross-validation ({report['mode']}): {report['folds_done']} of "
        f"{report['folds_total']} folds done"
    ]
    header = f"{'dataset':<24}{'metric':<15}{'mean':>7}{'sd':>7}{'min-max':>15}{'n':>7}{'folds':>7}"
    for condition, datasets in report["aggregate"].items():
        title = "clean audio" if condition == "clean" else condition.replace("_", " ")
        lines += ["", f"-- {title}", header, "-" * len(header)]
        for name, summary in datasets.items():
            for metric, _ in METRICS:
                lines.append(_row(DATASET_NAMES.get(name, name), metric, summary[metric]))
    return "\n".join(lines) + "\n"


def _row(dataset: str, metric: str, figure: dict[str, Any]) -> str:
    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    span = "-" if figure["min"] is None else f"{fmt(figure['min'])}-{fmt(figure['max'])}"
    return (
        f"{dataset:<24}{metric:<15}{fmt(figure['mean']):>7}{fmt(figure['sd']):>7}"
        f"{span:>15}{figure['n']:>7}{len(figure['values']):>7}"
    )
