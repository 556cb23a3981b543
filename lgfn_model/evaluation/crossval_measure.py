"""Measuring one cross-validation fold: figures per dataset and the predictions behind them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lgfn_model.evaluation.crossval_report import DATASET_NAMES
from lgfn_model.training.datasets import Example


def dataset_masks(examples: Sequence[Example]) -> dict[str, Any]:
    import numpy as np

    names = [n for n in DATASET_NAMES if any(e.dataset == n for e in examples)]
    names += sorted({e.dataset for e in examples} - set(DATASET_NAMES))
    return {n: np.array([e.dataset == n for e in examples], dtype=bool) for n in names}


def prediction_record(ids: Sequence[str], outputs: dict[str, Any]) -> dict[str, Any]:
    """The per-example block a fold result keeps (``predictions.<condition>``): ``outputs`` of
    :func:`~lgfn_model.evaluation.predicting.predict_examples`, rounded, in ``ids`` order."""
    return {
        "id": list(ids),
        "probs": [[round(float(p), 5) for p in row] for row in outputs["probs"]],
        "p_valence": [round(float(p), 5) for p in outputs["p_valence"]],
        "p_arousal": [round(float(p), 5) for p in outputs["p_arousal"]],
        # The mean audio gate of each clip: how much the words weighed (1 - gate), per example.
        "gate": [round(float(g), 5) for g in outputs["gate"]],
    }


def measure(
    predictor: Any, clips: list[Any], cache: Any, snr_db: float | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Figures per dataset by the evaluation code of `lgfn evaluate`, through the Predictor
    (lgfn_model/evaluation/predicting.py; labels as the readers map them: MIREX clusters 1/5/3
    as happy/angry/sad, valence over all five clusters, arousal 1/5 vs 3; the mood is the
    argmax over all four moods, and macro-F1 averages the moods present), and the predictions
    they come from, per example (what ``lgfn compare --crossval`` pairs between two recipes),
    with each clip's mean audio gate."""
    from lgfn_model.evaluation.metrics import evaluate_examples
    from lgfn_model.evaluation.predicting import predict_examples

    outputs = predict_examples(predictor, clips, cache, snr_db=snr_db, seed=0)
    examples = [c.example for c in clips]
    figures = evaluate_examples(
        examples,
        outputs["probs"],
        outputs["p_valence"],
        outputs["p_arousal"],
        subsets=dataset_masks(examples),
    )
    predictions = prediction_record([e.id for e in examples], outputs)
    return figures, predictions
