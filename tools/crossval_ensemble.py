"""The average of several cross-validated recipes, as a run `lgfn compare --crossval` can pair.

    python -m tools.crossval_ensemble runs/crossval-default runs/crossval-default-noise \\
        --out runs/ensemble-default-both
    lgfn compare --crossval --data ../shared/data runs/ensemble-default-both runs/crossval-default

For every fold that all the runs have measured (``fold-<i>.json`` with predictions), the
members' test predictions are averaged example by example (the four mood probabilities,
P(valence > 0), P(arousal > 0)) per condition (clean, each ``--snr``) and written as
``OUT/fold-<i>.json``. The members must have tested exactly the same examples in that fold
(the same data and ``--folds``); a fold that differs is refused by name.

What it is for: an ensemble costs one model's time per member, which the 2.5x-decode budget
does not allow, but a teacher for distillation may be an ensemble. If the average of two
recipes is clearly ahead of each, distilling the fast model from both is worth a run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from lgfn_model.evaluation.crossval_compare import fold_results

FIELDS = ("probs", "p_valence", "p_arousal")


def average_fold(name: str, members: list[dict[str, Any]]) -> dict[str, Any]:
    """One fold's averaged predictions; raises ValueError when the members' examples differ."""
    conditions = set.intersection(*(set(m.get("predictions", {})) for m in members))
    averaged: dict[str, Any] = {}
    for condition in sorted(conditions):
        parts = [m["predictions"][condition] for m in members]
        ids = parts[0]["id"]
        order = [{example: i for i, example in enumerate(p["id"])} for p in parts]
        if any(set(o) != set(ids) for o in order):
            raise ValueError(f"{name} ({condition}): the runs tested different examples")
        out: dict[str, Any] = {"id": list(ids)}
        for field in FIELDS:
            stacked = np.stack(
                [
                    np.asarray(p[field], dtype=np.float64)[[o[i] for i in ids]]
                    for p, o in zip(parts, order, strict=True)
                ]
            )
            out[field] = stacked.mean(axis=0).tolist()
        averaged[condition] = out
    return averaged


def ensemble(runs: list[Path], out: Path) -> list[str]:
    """Write the averaged folds into ``out``; returns the folds written."""
    results = [fold_results(run) for run in runs]
    common = sorted(
        name
        for name in set.intersection(*(set(r) for r in results))
        if all("predictions" in r[name] for r in results)
    )
    if not common:
        raise ValueError("the runs share no measured fold with predictions")
    out.mkdir(parents=True, exist_ok=True)
    for name in common:
        document = {
            "fold": results[0][name].get("fold"),
            "members": [str(run) for run in runs],
            "predictions": average_fold(name, [r[name] for r in results]),
        }
        (out / f"{name}.json").write_text(json.dumps(document) + "\n")
    return common


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.crossval_ensemble", description=__doc__)
    parser.add_argument("runs", nargs="+", type=Path, help="lgfn crossval --out folders")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    if len(args.runs) < 2:
        parser.error("give at least two runs")
    try:
        written = ensemble(args.runs, args.out)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{args.out}: {', '.join(written)} averaged over {len(args.runs)} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
