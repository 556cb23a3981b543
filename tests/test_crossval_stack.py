"""tools.crossval_stack: out-of-fold probes fused with a cross-validated recipe's predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lgfn_model.training.datasets import Example
from tools.crossval_stack import Prediction, fit_probes, fuse, moods_as_affect, stack
from tools.stack_features import line_windows, vader_features

pytest.importorskip("sklearn")


def _examples(n: int, seed: int = 0) -> list[Example]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        mood = int(rng.integers(0, 3))  # happy, angry, sad: MIREX-like moods
        valence = 1.0 if mood == 0 else -1.0
        arousal = -1.0 if mood == 2 else 1.0
        out.append(Example(f"mirex:{k:03d}", "mirex", None, None, mood, valence, arousal))
    return out


def _informative(examples: list[Example], seed: int = 1) -> dict[str, np.ndarray]:
    """Features that hold the mood (one-hot plus noise)."""
    rng = np.random.default_rng(seed)
    return {e.id: np.eye(4)[e.mood] * 2 + rng.normal(0, 0.5, 4) for e in examples}


def _write_base(folder: Path, examples: list[Example], folds: int, seed: int = 2) -> None:
    """A recipe that guesses: uniform-ish moods, valence and arousal near 0.5."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for fold in range(folds):
        part = examples[fold::folds]
        probs = rng.dirichlet(np.ones(4) * 20, size=len(part))
        document = {
            "fold": fold + 1,
            "predictions": {
                "clean": {
                    "id": [e.id for e in part],
                    "probs": probs.tolist(),
                    "p_valence": rng.uniform(0.45, 0.55, len(part)).tolist(),
                    "p_arousal": rng.uniform(0.45, 0.55, len(part)).tolist(),
                },
                "snr_0db": {"id": [], "probs": [], "p_valence": [], "p_arousal": []},
            },
        }
        (folder / f"fold-{fold + 1}.json").write_text(json.dumps(document))


def test_a_probe_never_learns_from_the_examples_it_predicts() -> None:
    examples = _examples(90)
    by_id = {e.id: e for e in examples}
    features = _informative(examples)
    test_ids = [e.id for e in examples[:30]]
    first = fit_probes(features, by_id, test_ids, strength=1.0)
    relabelled = dict(by_id)
    for i in test_ids:  # a test example's own label must not change its prediction
        relabelled[i] = Example(i, "mirex", None, None, (by_id[i].mood + 1) % 3, 1.0, 1.0)
    second = fit_probes(features, relabelled, test_ids, strength=1.0)
    assert set(first) == set(test_ids)
    for i in test_ids:
        np.testing.assert_allclose(first[i].probs, second[i].probs)
    right = np.mean([first[i].probs.argmax() == by_id[i].mood for i in test_ids])
    assert right > 0.8


def test_fusing_with_weight_zero_keeps_the_recipe_and_a_weight_moves_it() -> None:
    recipe = Prediction(np.array([0.4, 0.3, 0.2, 0.1]), 0.6, 0.4)
    probe = Prediction(np.array([0.05, 0.05, 0.85, 0.05]), 0.1, 0.9)
    same = fuse(recipe, probe, (0.0, 0.0, 0.0))
    np.testing.assert_allclose(same.probs, recipe.probs)
    assert same.valence == pytest.approx(0.6) and same.arousal == pytest.approx(0.4)
    moved = fuse(recipe, probe, (1.0, 1.0, 1.0))
    assert moved.probs.argmax() == 2 and moved.valence < 0.5 < moved.arousal
    assert moved.probs.sum() == pytest.approx(1.0)
    assert fuse(recipe, None, (1.0, 1.0, 1.0)) is recipe


def test_an_informative_source_is_weighted_in_and_beats_a_guessing_recipe(tmp_path: Path) -> None:
    examples = _examples(150)
    base, out = tmp_path / "base", tmp_path / "stacked"
    _write_base(base, examples, folds=3)
    chosen, alone = stack(base, _informative(examples), examples, out, strength=1.0)
    assert alone["mirex"][0] == len(examples) and alone["mirex"][1] > 0.8
    assert set(chosen) == {"fold-1", "fold-2", "fold-3"}
    assert all(w[0] > 0 and w[1] > 0 and w[2] > 0 for w in chosen.values())
    by_id = {e.id: e for e in examples}
    right = 0
    for name in chosen:
        document = json.loads((out / f"{name}.json").read_text())
        assert set(document["predictions"]) == {"clean"}  # only clean audio is screened
        part = document["predictions"]["clean"]
        right += sum(
            by_id[i].mood == int(np.argmax(p))
            for i, p in zip(part["id"], part["probs"], strict=True)
        )
    assert right / len(examples) > 0.8


def test_a_source_of_noise_gets_no_weight_on_most_folds(tmp_path: Path) -> None:
    examples = _examples(150)
    base = tmp_path / "base"
    _write_base(base, examples, folds=3)
    # The recipe is right here; the features are pure noise.
    for path in base.glob("fold-*.json"):
        document = json.loads(path.read_text())
        part = document["predictions"]["clean"]
        moods = {e.id: e.mood for e in examples}
        part["probs"] = [np.eye(4)[moods[i]].clip(0.05).tolist() for i in part["id"]]
        path.write_text(json.dumps(document))
    rng = np.random.default_rng(5)
    noise = {e.id: rng.normal(size=4) for e in examples}
    chosen, _ = stack(base, noise, examples, tmp_path / "out", strength=1.0)
    assert sum(w[0] == 0 for w in chosen.values()) >= 2


def test_a_single_fold_cannot_choose_its_weights_elsewhere(tmp_path: Path) -> None:
    examples = _examples(30)
    base = tmp_path / "base"
    _write_base(base, examples, folds=1)
    with pytest.raises(ValueError, match="two or more"):
        stack(base, _informative(examples), examples, tmp_path / "out")


def test_another_runs_out_of_fold_predictions_can_be_the_probe(tmp_path: Path) -> None:
    examples = _examples(150)
    base, probe, out = tmp_path / "base", tmp_path / "probe", tmp_path / "out"
    _write_base(base, examples, folds=3)
    _write_base(probe, examples, folds=3, seed=9)
    for path in probe.glob("fold-*.json"):  # a probe that knows the moods
        document = json.loads(path.read_text())
        part = document["predictions"]["clean"]
        moods = {e.id: e.mood for e in examples}
        part["probs"] = [np.eye(4)[moods[i]].clip(0.1).tolist() for i in part["id"]]
        path.write_text(json.dumps(document))
    chosen, _ = stack(base, None, examples, out, probe_run=probe)
    assert all(w[0] > 0 for w in chosen.values())

    # Only the folds both runs have are fused (here 1 and 2), as lgfn compare pairs them.
    (probe / "fold-3.json").rename(tmp_path / "fold-3.json")
    chosen, _ = stack(base, None, examples, tmp_path / "two", probe_run=probe)
    assert set(chosen) == {"fold-1", "fold-2"}
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["fold-1.json", "fold-2.json"]
    (tmp_path / "fold-3.json").rename(probe / "fold-3.json")

    # A probe whose fold predicts another fold's example has seen it in training: refused.
    document = json.loads((probe / "fold-1.json").read_text())
    document["predictions"]["clean"]["id"][0] = examples[1].id  # fold-2's first example
    (probe / "fold-1.json").write_text(json.dumps(document))
    with pytest.raises(ValueError, match="not a test example of that fold"):
        stack(base, None, examples, out, probe_run=probe)


def test_a_dataset_weighted_zero_teaches_the_probe_nothing() -> None:
    from tools.crossval_stack import parse_dataset_weights

    examples = _examples(90)
    others = [
        Example(f"nju:{k:03d}", "nju", None, None, k % 3, 1.0, -1.0) for k in range(60)
    ]  # labels that contradict the features
    by_id = {e.id: e for e in examples + others}
    features = _informative(examples) | {e.id: np.eye(4)[(e.mood + 1) % 3] for e in others}
    test_ids = [e.id for e in examples[:30]]
    alone = fit_probes({i: features[i] for i in features if i.startswith("mirex")}, by_id,
                       test_ids, strength=1.0)  # fmt: skip
    weights = parse_dataset_weights(["nju=0"], list(by_id.values()))
    left_out = fit_probes(features, by_id, test_ids, strength=1.0, dataset_weights=weights)
    mixed = fit_probes(features, by_id, test_ids, strength=1.0)
    for i in test_ids:
        np.testing.assert_allclose(left_out[i].probs, alone[i].probs)
    # Weighted in, the contradicting set changes what the probe says.
    assert not all(np.allclose(mixed[i].probs, alone[i].probs) for i in test_ids)
    light = fit_probes(features, by_id, test_ids, strength=1.0, dataset_weights={"nju": 0.1})
    distance = lambda probes: sum(abs(probes[i].probs - alone[i].probs).sum() for i in test_ids)  # noqa: E731
    assert distance(light) < distance(mixed)


@pytest.mark.parametrize(
    ("item", "message"),
    [("nju", "expected DATASET=WEIGHT"), ("4q=1", "no dataset '4q'"), ("mirex=-1", "0 or more")],
)
def test_probe_weights_are_checked(item: str, message: str) -> None:
    from tools.crossval_stack import parse_dataset_weights

    with pytest.raises(ValueError, match=message):
        parse_dataset_weights([item], _examples(3))


def test_the_moods_read_as_valence_and_arousal() -> None:
    recipe = Prediction(np.array([0.1, 0.2, 0.6, 0.1]), 0.8, 0.3)  # happy, angry, sad, relaxed
    probe = moods_as_affect(recipe)
    np.testing.assert_allclose(probe.probs, recipe.probs)
    assert probe.valence == pytest.approx(0.2)  # happy + relaxed
    assert probe.arousal == pytest.approx(0.3)  # happy + angry


def test_a_valence_head_that_guesses_leans_on_right_moods(tmp_path: Path) -> None:
    examples = _examples(150)
    base, out = tmp_path / "base", tmp_path / "out"
    _write_base(base, examples, folds=3)
    moods = {e.id: e.mood for e in examples}
    for path in base.glob("fold-*.json"):  # right moods, valence and arousal near 0.5
        document = json.loads(path.read_text())
        part = document["predictions"]["clean"]
        part["probs"] = [np.eye(4)[moods[i]].clip(0.1).tolist() for i in part["id"]]
        path.write_text(json.dumps(document))
    chosen, _ = stack(base, None, examples, out, probe_moods=True)
    assert all(w[0] == 0 and w[1] > 0 and w[2] > 0 for w in chosen.values())
    by_id = {e.id: e for e in examples}
    right = 0
    for name in chosen:
        part = json.loads((out / f"{name}.json").read_text())["predictions"]["clean"]
        right += sum(
            (v > 0.5) == (by_id[i].valence > 0)
            for i, v in zip(part["id"], part["p_valence"], strict=True)
        )
    assert right == len(examples)


def test_lyric_lines_are_windowed_whole_within_the_token_limit() -> None:
    lines = ["a", "b", "c", "d"]
    assert line_windows(lines, [3, 3, 3, 3], 6) == ["a\nb", "c\nd"]
    assert line_windows(lines, [9, 1, 1, 1], 6) == ["a", "b\nc\nd"]  # too long: alone
    assert line_windows([], [], 6) == []


def test_vader_reads_the_lyrics_sentiment(tmp_path: Path) -> None:
    pytest.importorskip("vaderSentiment")
    happy, sad, empty = tmp_path / "happy.txt", tmp_path / "sad.txt", tmp_path / "empty.txt"
    happy.write_text("I love you, you make me so happy\nwhat a wonderful day\n")
    sad.write_text("I hate this lonely pain\nmy tears, my grief, I want to die\n")
    empty.write_text("\n")
    examples = [
        Example("mirex:happy", "mirex", None, happy, 0, 1.0, 1.0),
        Example("mirex:sad", "mirex", None, sad, 2, -1.0, -1.0),
        Example("mirex:empty", "mirex", None, empty, 2, -1.0, -1.0),
        Example("4q:none", "4q", None, None, 0, 1.0, 1.0),
    ]
    features = vader_features(examples)
    assert set(features) == {"mirex:happy", "mirex:sad"}  # nothing to read: no vector
    assert features["mirex:happy"].shape == (13,)
    assert features["mirex:happy"][0] > 0.3 > -0.3 > features["mirex:sad"][0]  # mean compound
