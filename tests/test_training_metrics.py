"""Evaluation metrics on inputs whose answers are known by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lgfn_model.evaluation.metrics import (
    agreement,
    compute_metrics,
    confusion_matrix,
    evaluate_examples,
    f1_per_class,
    format_report,
    roc_auc,
    sign_metrics,
    summary_table,
    to_json,
)
from lgfn_model.evaluation.paired import (
    mcnemar_exact_p,
    paired_comparison,
    several_runs_comparison,
    training_spread,
)
from lgfn_model.training.datasets import Example


def one_hot(indices, n=4):
    out = np.full((len(indices), n), 0.1)
    out[np.arange(len(indices)), indices] = 0.7
    return out


def test_mood_metrics_known_values() -> None:
    truth = [0, 0, 1, 1, 2, 3, None]
    predicted = [0, 1, 1, 1, 2, 2, 3]
    result = compute_metrics(truth, one_hot(predicted), [None] * 7, None, [None] * 7, None)
    mood = result["mood"]
    assert mood["n"] == 6
    assert mood["accuracy"] == pytest.approx(4 / 6)
    # happy: tp1 fn1 fp0 -> 2/3; angry: tp2 fp1 -> 0.8; sad: tp1 fp1 -> 2/3; relaxed: 0
    f1 = mood["per_class_f1"]
    assert f1["happy"] == pytest.approx(2 / 3) and f1["angry"] == pytest.approx(0.8)
    assert f1["sad"] == pytest.approx(2 / 3) and f1["relaxed"] == 0.0
    assert mood["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 2 / 3 + 0) / 4)
    assert mood["confusion"] == [[1, 1, 0, 0], [0, 2, 0, 0], [0, 0, 1, 0], [0, 0, 1, 0]]
    assert mood["support"] == {"happy": 2, "angry": 2, "sad": 1, "relaxed": 1}


def test_macro_f1_skips_classes_without_truth() -> None:
    matrix = confusion_matrix(np.array([0, 0, 1]), np.array([0, 3, 1]), 4)
    assert f1_per_class(matrix) == [pytest.approx(2 / 3), 1.0, None, None]
    result = compute_metrics([0, 0, 1], one_hot([0, 3, 1]), [None] * 3, None, [None] * 3, None)
    assert result["mood"]["macro_f1"] == pytest.approx((2 / 3 + 1.0) / 2)


def test_roc_auc_matches_sklearn_with_ties() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 200).astype(bool)
    scores = np.round(rng.random(200) + 0.3 * truth, 1)  # many ties
    assert roc_auc(truth, scores) == pytest.approx(roc_auc_score(truth, scores))
    assert roc_auc([True, True], [0.1, 0.2]) is None
    assert roc_auc([False, True], [0.1, 0.9]) == 1.0


def test_sign_metrics_partial_labels() -> None:
    truth = [1.0, -1.0, None, float("nan"), 0.0, 0.5, -0.2]
    p = np.array([0.9, 0.4, 0.1, 0.9, 0.9, 0.3, 0.6])
    result = sign_metrics(truth, p)
    assert result["n"] == 4 and result["n_positive"] == 2
    assert result["accuracy"] == pytest.approx(2 / 4)
    assert result["roc_auc"] == pytest.approx(
        roc_auc([True, False, True, False], [0.9, 0.4, 0.3, 0.6])
    )
    assert sign_metrics([None, None], np.array([0.5, 0.5]))["accuracy"] is None


def test_empty_and_missing_predictions() -> None:
    result = compute_metrics([None], None, [None], None, [None], None)
    assert result["mood"]["accuracy"] is None and result["mood"]["confusion"] is None
    text = format_report({"empty": result})
    assert "accuracy -" in text
    with pytest.raises(ValueError):
        compute_metrics([0, 1], np.zeros((3, 4)), [1, 1], None, [1, 1], None)


def _example(i, mood, valence, arousal, lyrics):
    return Example(f"t:{i}", "t", None, None if not lyrics else "x.txt", mood, valence, arousal)


def test_evaluate_examples_subsets_and_report() -> None:
    examples = [
        _example(0, 0, 1.0, 1.0, True),
        _example(1, 2, -1.0, -1.0, False),
        _example(2, None, 1.0, None, True),
        _example(3, 1, -1.0, 1.0, False),
    ]
    probs = one_hot([0, 2, 3, 0])
    pv = np.array([0.8, 0.3, 0.6, 0.7])
    pa = np.array([0.9, 0.2, 0.5, 0.4])
    results = evaluate_examples(examples, probs, pv, pa)
    assert list(results) == ["all", "with lyrics", "without lyrics"]
    assert results["all"]["mood"]["accuracy"] == pytest.approx(2 / 3)
    assert results["all"]["valence"]["accuracy"] == pytest.approx(3 / 4)
    assert results["all"]["arousal"]["accuracy"] == pytest.approx(2 / 3)
    assert results["with lyrics"]["n"] == 2 and results["with lyrics"]["mood"]["n"] == 1
    assert results["without lyrics"]["valence"]["roc_auc"] is None  # one class only
    assert results["without lyrics"]["arousal"]["roc_auc"] == 1.0
    text = format_report(results, "title")
    assert "== with lyrics (n=2)" in text and "relaxed" in text and text.startswith("title")
    table = summary_table({"model": results["all"], "baseline": results["without lyrics"]})
    assert "model" in table and "baseline" in table and "0.667" in table
    decoded = json.loads(to_json(results))
    assert decoded["all"]["mood"]["confusion"][0][0] == 1


def test_agreement() -> None:
    assert agreement([0, 1, 2, 3], [0, 1, 2, 0]) == 0.75
    assert agreement([], []) is None
    with pytest.raises(ValueError):
        agreement([1], [1, 2])
    assert not math.isnan(agreement(np.zeros(5), np.zeros(5)))


def test_mcnemar_exact_p_counts_only_the_discordant_clips() -> None:
    assert mcnemar_exact_p(0, 0) == 1.0
    assert mcnemar_exact_p(5, 0) == pytest.approx(2 / 32)
    assert mcnemar_exact_p(0, 10) == mcnemar_exact_p(10, 0) == pytest.approx(2 / 1024)
    assert mcnemar_exact_p(7, 7) == 1.0
    # 30 against 16: the textbook borderline case
    assert 0.05 < mcnemar_exact_p(30, 16) < 0.06


def test_paired_comparison_of_two_outcome_vectors() -> None:
    rng = np.random.default_rng(0)
    a = rng.random(300) < 0.78
    b = a.copy()
    b[:20] = ~b[:20]  # B differs from A on 20 clips
    result = paired_comparison(a, b, samples=2000)
    assert result["n"] == 300
    assert result["only_a"] + result["only_b"] == 20
    assert result["difference"] == pytest.approx((result["only_a"] - result["only_b"]) / 300)
    low, high = result["interval_95"]
    assert low <= result["difference"] <= high and high - low < 0.1
    same = paired_comparison(a, a, samples=500)
    assert (same["only_a"], same["only_b"], same["mcnemar_p"]) == (0, 0, 1.0)
    assert same["interval_95"] == [0.0, 0.0]
    with pytest.raises(ValueError, match="differ in shape"):
        paired_comparison(a, b[:10])


def test_several_trainings_a_side_count_the_trainings_luck() -> None:
    rng = np.random.default_rng(1)
    first = rng.random(400) < 0.7
    second = first.copy()
    second[:40] = ~second[:40]  # a second training of A: other luck on 40 examples
    other = rng.random(400) < 0.6
    result = several_runs_comparison(np.stack([first, second]), other[None], samples=2000)
    each = [first.mean(), second.mean()]
    assert result["runs_a"] == pytest.approx(each) and result["runs_b"] == [other.mean()]
    assert result["accuracy_a"] == pytest.approx(np.mean(each))
    assert result["difference"] == pytest.approx(np.mean(each) - other.mean())
    assert result["mcnemar_p"] is None
    share = (first.astype(float) + second) / 2
    assert result["only_a"] == int((share > other).sum())
    # Two trainings on the same examples: their spread is the luck of one training.
    assert result["training_sd"] == pytest.approx(abs(each[0] - each[1]) / math.sqrt(2))
    low, high = result["interval_95"]
    luck_low, luck_high = result["interval_95_trainings"]
    assert luck_low < low < result["difference"] < high < luck_high

    # Identical trainings: no luck to count, and the two intervals nearly agree.
    twice = several_runs_comparison(np.stack([first, first]), other[None], samples=4000)
    assert twice["training_sd"] == 0.0
    assert twice["interval_95_trainings"] == pytest.approx(twice["interval_95"], abs=0.01)
    # One training a side: the luck cannot be told, so no second interval.
    once = several_runs_comparison(first[None], other[None], samples=500)
    assert once["training_sd"] is None and once["interval_95_trainings"] is None
    assert once["difference"] == paired_comparison(first, other)["difference"]
    with pytest.raises(ValueError, match="other examples"):
        several_runs_comparison(first[None], other[None, :10])
    # The luck pools over both recipes; a side trained once adds nothing to it.
    assert training_spread([0.70, 0.72], [0.60])["df"] == 1
    assert training_spread([0.70, 0.72], [0.60, 0.64])["sd"] == pytest.approx(
        math.sqrt((0.01**2 * 2 + 0.02**2 * 2) / 2)
    )
