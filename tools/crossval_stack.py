"""Would a frozen source add to a cross-validated recipe? A screen before a branch is trained.

    python -m tools.crossval_stack --data ../shared/data --base runs/crossval-default \\
        --features fcn --out runs/stack-default-fcn
    lgfn compare --crossval --data ../shared/data runs/stack-default-fcn runs/crossval-default

Training a new branch into the default recipe and cross-validating it costs about two hours of
both cores here; this costs seconds to minutes. For each fold of the ``--base`` run:

1. a **probe** (standardised features, logistic regression, one per label: the four moods, the
   sign of valence, the sign of arousal) is fitted on every labelled development example
   outside the fold's test examples, and predicts the fold's test examples: so the probe never
   sees a test example, as the recipe's fold model did not;
2. the probe is **fused** with the recipe's own test prediction of each example by a weighted
   sum of log-probabilities (moods) and log-odds (valence, arousal): ``recipe + w * probe``;
3. the weights (one per label, from ``--weights``) are **chosen on the other folds** only, by
   the MIREX-like clips' mood macro-F1, valence and arousal accuracy (``--choose-on``), so the
   fold's own figures do not choose them.

``OUT/fold-<i>.json`` holds the fused clean predictions (and the weights chosen), which
`lgfn compare --crossval` pairs with the base run. A source whose fused predictions are not
ahead of the recipe's own gives a branch little to learn from: what it knows, the recipe knows
already. The converse is weaker (a branch inside the network may use what a linear read-out of
a clip summary cannot), so a screen that pays is worth a trained branch, not a shipped model.
Only clean audio is screened (the base run's other conditions are left out); with
``--probe-run``, only the folds both runs have. Feature sources:
`tools.stack_features`. Needs scikit-learn (the ``research`` extra).

``--probe-moods`` fits nothing: the probe is the base's own mood probabilities read as valence
(P(happy) + P(relaxed)) and arousal (P(happy) + P(angry)), so the screen asks whether the
recipe's valence and arousal heads gain by leaning on its mood head, with the weights chosen on
other folds as above.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lgfn_model.evaluation.crossval_compare import fold_results
from lgfn_model.evaluation.metrics import mood_metrics
from lgfn_model.evaluation.paired import correct_per_example
from lgfn_model.training.datasets import MOODS, Example

EPS = 1e-6
DEFAULT_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class Prediction:
    """Four mood probabilities, P(valence > 0), P(arousal > 0)."""

    probs: np.ndarray
    valence: float
    arousal: float


def _sign(value: float | None) -> int | None:
    return None if value is None or value == 0 else int(value > 0)


def fit_probes(
    features: Mapping[str, np.ndarray],
    examples: Mapping[str, Example],
    test_ids: Sequence[str],
    strength: float,
    dataset_weights: Mapping[str, float] | None = None,
) -> dict[str, Prediction]:
    """The probe's predictions of ``test_ids`` (those with features), fitted on all others,
    each training example weighted by its dataset's ``dataset_weights`` entry (default 1; 0
    leaves that dataset out): which sets teach the probe what."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    held_out = set(test_ids)
    weights = dict(dataset_weights or {})
    train_ids = [
        i
        for i in features
        if i not in held_out and i in examples and weights.get(examples[i].dataset, 1.0) > 0
    ]
    tested = [i for i in test_ids if i in features]
    if not tested:
        return {}
    test_matrix = np.stack([features[i] for i in tested])
    columns: dict[str, np.ndarray] = {}
    targets = {
        "mood": lambda e: e.mood,
        "valence": lambda e: _sign(e.valence),
        "arousal": lambda e: _sign(e.arousal),
    }
    for label, target in targets.items():
        rows = [
            (features[i], target(examples[i]), weights.get(examples[i].dataset, 1.0))
            for i in train_ids
        ]
        rows = [(x, y, w) for x, y, w in rows if y is not None]
        classes = sorted({y for _, y, _ in rows})
        if len(classes) < 2:
            raise ValueError(f"the probe for {label} has fewer than two classes to learn")
        model = make_pipeline(StandardScaler(), LogisticRegression(C=strength, max_iter=5000)).fit(
            np.stack([x for x, _, _ in rows]),
            np.array([y for _, y, _ in rows]),
            logisticregression__sample_weight=np.array([w for _, _, w in rows]),
        )
        probabilities = model.predict_proba(test_matrix)
        if label == "mood":
            full = np.full((len(tested), len(MOODS)), EPS)
            full[:, model.classes_] = probabilities
            columns[label] = full / full.sum(axis=1, keepdims=True)
        else:
            columns[label] = probabilities[:, list(model.classes_).index(1)]
    return {
        example_id: Prediction(columns["mood"][k], columns["valence"][k], columns["arousal"][k])
        for k, example_id in enumerate(tested)
    }


def _log_odds(p: float) -> float:
    p = min(max(p, EPS), 1 - EPS)
    return float(np.log(p / (1 - p)))


def moods_as_affect(recipe: Prediction) -> Prediction:
    """The recipe's own mood probabilities read as valence and arousal: P(valence > 0) =
    P(happy) + P(relaxed), P(arousal > 0) = P(happy) + P(angry) (the moods are the four
    quadrants). Fused, it pulls the recipe's valence and arousal heads towards its mood head;
    its moods are the recipe's, so a mood weight only sharpens them and changes no choice."""
    happy, angry, relaxed = (
        float(recipe.probs[MOODS.index(m)]) for m in ("happy", "angry", "relaxed")
    )
    return Prediction(recipe.probs, happy + relaxed, happy + angry)


def fuse(recipe: Prediction, probe: Prediction | None, weights: Sequence[float]) -> Prediction:
    """``recipe + w * probe`` in log-probabilities (moods) and log-odds (valence, arousal)."""
    if probe is None:
        return recipe
    mood_w, valence_w, arousal_w = weights
    scores = np.log(np.clip(recipe.probs, EPS, 1)) + mood_w * np.log(np.clip(probe.probs, EPS, 1))
    probs = np.exp(scores - scores.max())
    valence = _log_odds(recipe.valence) + valence_w * _log_odds(probe.valence)
    arousal = _log_odds(recipe.arousal) + arousal_w * _log_odds(probe.arousal)
    return Prediction(
        probs / probs.sum(), float(1 / (1 + np.exp(-valence))), float(1 / (1 + np.exp(-arousal)))
    )


def _scores(examples: list[Example], rows: list[Prediction]) -> tuple[float, float, float]:
    """Mood macro-F1, valence and arousal accuracy, as `lgfn compare` counts them (0 if none)."""
    probs = np.stack([r.probs for r in rows])
    macro = mood_metrics([e.mood for e in examples], probs)["macro_f1"] or 0.0
    right = correct_per_example(
        examples, probs, np.array([r.valence for r in rows]), np.array([r.arousal for r in rows])
    )
    return (
        macro,
        float(right["valence"].mean()) if right["valence"].size else 0.0,
        float(right["arousal"].mean()) if right["arousal"].size else 0.0,
    )


def choose_weights(
    examples: list[Example],
    recipe: list[Prediction],
    probes: list[Prediction | None],
    grid: Sequence[float],
) -> tuple[float, float, float]:
    """Per label, the grid weight that scores best on these examples (the smallest on ties)."""
    best: list[float] = []
    for label in range(3):
        scored = []
        for weight in grid:
            chosen = [0.0, 0.0, 0.0]
            chosen[label] = weight
            rows = [fuse(r, p, chosen) for r, p in zip(recipe, probes, strict=True)]
            scored.append((-_scores(examples, rows)[label], weight))
        best.append(min(scored)[1])
    return best[0], best[1], best[2]


def _clean_predictions(document: dict[str, Any], where: str) -> dict[str, Prediction]:
    part = document.get("predictions", {}).get("clean")
    if part is None:
        raise ValueError(f"{where}: no clean predictions (measured before they were kept)")
    rows = zip(part["id"], part["probs"], part["p_valence"], part["p_arousal"], strict=True)
    return {i: Prediction(np.asarray(p, dtype=np.float64), v, a) for i, p, v, a in rows}


def probes_from_run(run: Path) -> dict[str, dict[str, Prediction]]:
    """Another run's out-of-fold clean predictions, by fold name, to fuse as the probe."""
    return {
        name: _clean_predictions(doc, str(run / f"{name}.json"))
        for name, doc in fold_results(run).items()
    }


def stack(
    base: Path,
    features: Mapping[str, np.ndarray] | None,
    examples: Sequence[Example],
    out: Path,
    strength: float = 0.01,
    grid: Sequence[float] = DEFAULT_WEIGHTS,
    choose_on: str = "mirex",
    probe_run: Path | None = None,
    dataset_weights: Mapping[str, float] | None = None,
    probe_moods: bool = False,
) -> tuple[dict[str, tuple[float, float, float]], dict[str, tuple[int, float, float, float]]]:
    """Write the fused folds of ``base`` into ``out``; returns the weights chosen per fold and,
    per dataset, the probe's own figures over the examples it predicted (n, mood macro-F1,
    valence and arousal accuracy): what the source knows alone.

    The probe is fitted on ``features`` per fold, or read from ``probe_run``: another run's
    predictions over the same folds (a model trained per fold, such as a tuned lyrics encoder),
    which must not have seen the fold's test examples. ``dataset_weights`` weighs the probe's
    training examples by dataset (:func:`fit_probes`). ``probe_moods`` makes the recipe's own
    moods the probe (:func:`moods_as_affect`)."""
    by_id = {e.id: e for e in examples}
    folds = {
        name: _clean_predictions(doc, str(base / f"{name}.json"))
        for name, doc in fold_results(base).items()
    }
    given = probes_from_run(probe_run) if probe_run is not None else None
    if given is not None:  # as `lgfn compare --crossval`: the folds both runs have
        folds = {name: fold for name, fold in folds.items() if name in given}
    if len(folds) < 2:
        raise ValueError(
            f"{base}: the weights are chosen on other folds, so it needs two or more"
            + (f" that {probe_run} has too" if probe_run is not None else "")
        )
    unknown = [i for fold in folds.values() for i in fold if i not in by_id]
    if unknown:
        raise ValueError(f"{len(unknown)} tested examples (e.g. {unknown[0]}) are not in --data")
    if given is not None:
        strays = [i for name in folds for i in given[name] if i not in folds[name]]
        if strays:
            raise ValueError(
                f"{probe_run}: {strays[0]} is not a test example of that fold in {base}"
            )
        probes = {name: given[name] for name in folds}
    elif probe_moods:
        probes = {
            name: {i: moods_as_affect(p) for i, p in fold.items()} for name, fold in folds.items()
        }
    elif features is not None:
        probes = {
            name: fit_probes(features, by_id, list(fold), strength, dataset_weights)
            for name, fold in folds.items()
        }
    else:
        raise ValueError("give features or a probe run")
    out.mkdir(parents=True, exist_ok=True)
    chosen: dict[str, tuple[float, float, float]] = {}
    for name, fold in folds.items():
        others = [
            (i, fold_name)
            for fold_name, other in folds.items()
            if fold_name != name
            for i in other
            if by_id[i].dataset == choose_on
        ]
        if not others:
            raise ValueError(f"no {choose_on} examples in the folds other than {name}")
        weights = choose_weights(
            [by_id[i] for i, _ in others],
            [folds[f][i] for i, f in others],
            [probes[f].get(i) for i, f in others],
            grid,
        )
        chosen[name] = weights
        rows = {i: fuse(p, probes[name].get(i), weights) for i, p in fold.items()}
        document = {
            "fold": name,
            "base": str(base),
            "weights": dict(zip(("mood", "valence", "arousal"), weights, strict=True)),
            "probed": sum(i in probes[name] for i in fold),
            "predictions": {
                "clean": {
                    "id": list(rows),
                    "probs": [r.probs.round(6).tolist() for r in rows.values()],
                    "p_valence": [round(r.valence, 6) for r in rows.values()],
                    "p_arousal": [round(r.arousal, 6) for r in rows.values()],
                }
            },
        }
        (out / f"{name}.json").write_text(json.dumps(document) + "\n")
    alone: dict[str, tuple[int, float, float, float]] = {}
    pooled = {i: p for fold in probes.values() for i, p in fold.items()}
    for dataset in sorted({by_id[i].dataset for i in pooled}):
        ids = [i for i in pooled if by_id[i].dataset == dataset]
        alone[dataset] = (len(ids), *_scores([by_id[i] for i in ids], [pooled[i] for i in ids]))
    return chosen, alone


def parse_dataset_weights(items: Sequence[str], examples: Sequence[Example]) -> dict[str, float]:
    """``["nju=0.1", ...]`` as {dataset: weight}; unknown datasets and negative weights are
    errors that name the item."""
    present = sorted({e.dataset for e in examples})
    weights: dict[str, float] = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            weight = float(value)
        except ValueError:
            raise ValueError(f"--probe-weight {item!r}: expected DATASET=WEIGHT") from None
        if name not in present:
            raise ValueError(
                f"--probe-weight {item!r}: no dataset {name!r} (here: {', '.join(present)})"
            )
        if weight < 0:
            raise ValueError(f"--probe-weight {item!r}: a weight is 0 or more")
        weights[name] = weight
    return weights


def main(argv: list[str] | None = None) -> int:
    from tools.stack_features import SOURCES, clip_features

    parser = argparse.ArgumentParser(prog="python -m tools.crossval_stack", description=__doc__)
    parser.add_argument("--data", required=True, type=Path, help="the data the base was run on")
    parser.add_argument("--base", required=True, type=Path, help="an lgfn crossval --out folder")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--features", choices=SOURCES, help="fit a probe per fold on these")
    source.add_argument(
        "--probe-run", type=Path, help="or fuse this run's out-of-fold predictions (same folds)"
    )
    source.add_argument(
        "--probe-moods",
        action="store_true",
        help="or the base's own moods read as valence (happy + relaxed) and arousal "
        "(happy + angry)",
    )
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--strength", type=float, default=0.01, help="the probe's C (0.01)")
    parser.add_argument("--weights", type=float, nargs="+", default=list(DEFAULT_WEIGHTS))
    parser.add_argument("--choose-on", default="mirex", help="dataset the weights are chosen on")
    parser.add_argument("--cache", type=Path, default=None, help="feature cache folder")
    parser.add_argument(
        "--probe-weight",
        action="append",
        default=[],
        metavar="DATASET=W",
        help="weigh the probe's training examples of DATASET by W (default 1; 0 leaves them "
        "out), e.g. nju=0.1; repeatable; with --features only",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from lgfn_model.training.cache import FeatureCache
    from lgfn_model.training.crossval import development_examples

    try:
        examples = development_examples(args.data)
        dataset_weights = parse_dataset_weights(args.probe_weight, examples)
        if dataset_weights and not args.features:
            raise ValueError("--probe-weight weighs a probe fitted on --features")
        features = (
            clip_features(args.features, examples, FeatureCache(args.cache))
            if args.features
            else None
        )
        chosen, alone = stack(
            args.base,
            features,
            examples,
            args.out,
            args.strength,
            args.weights,
            args.choose_on,
            args.probe_run,
            dataset_weights,
            args.probe_moods,
        )
    except (ValueError, FileNotFoundError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if features is not None:
        print(f"{args.features}: {len(features)} examples with features")
    for dataset, (n, macro, valence, arousal) in alone.items():
        print(
            f"the probe alone on {dataset} ({n} examples): mood macro-F1 {macro:.3f}, "
            f"valence {valence:.3f}, arousal {arousal:.3f}"
        )
    for name, weights in chosen.items():
        print(
            f"{name}: weights mood {weights[0]:g}, valence {weights[1]:g}, arousal {weights[2]:g}"
        )
    print(
        f"written to {args.out}; pair it: lgfn compare --crossval --data {args.data} "
        f"{args.out} {args.base}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
