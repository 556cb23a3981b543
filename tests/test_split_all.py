"""`lgfn train --split all` (every development example, none held out), the note measurements
print for such a model, and tools.heldout_vs_crossval (a held-out checkpoint paired with a
crossval run on the clips neither trained on)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from crossval_factory import make_crossval_data, tiny_recipe

from lgfn_model.cli import main as lgfn_main
from lgfn_model.evaluation.compare import format_comparison
from lgfn_model.evaluation.predicting import seen_test_note
from lgfn_model.training.crossval import CrossvalSettings, development_examples, run_crossval
from lgfn_model.training.datasets import load_examples
from lgfn_model.training.splits import all_split, heldout_split
from lgfn_model.training.train import prepare_split, train
from tools import heldout_vs_crossval


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny data root, a 2-fold crossval run measured clean and at 0 dB, and two tiny
    checkpoints of the same recipe: one on the held-out split, one on all the data."""
    base = tmp_path_factory.mktemp("split-all")
    data = make_crossval_data(base / "data")
    cache = base / "cache"
    recipe = tiny_recipe(data, cache)
    run = base / "cv"
    run_crossval(CrossvalSettings(data=data, recipe=recipe, out=run, folds=2, jobs=1, snrs=(0.0,)))
    paths = {"data": data, "cache": cache, "run": run}
    for split in ("heldout", "all"):
        out = base / split
        train(dataclasses.replace(recipe, out=out, split=split, version=f"lgfn-test-{split}"))
        paths[split] = out
    return paths


def test_all_split_trains_on_every_development_example(trained) -> None:
    data = trained["data"]
    recipe = tiny_recipe(data, trained["cache"])
    split = prepare_split(dataclasses.replace(recipe, split="all"))
    everything = [e for e in development_examples(data) if e.labelled]
    assert {e.id for e in split.train} == {e.id for e in everything}
    assert split.test == []
    # MoodyLyrics4Q and NJU's prescribed test songs train too; the held-out split has neither.
    assert any(e.dataset == "moodylyrics" for e in split.train)
    heldout = heldout_split(load_examples(data))
    assert len(split.train) > len(heldout.train)
    assert not any(e.dataset == "moodylyrics" for e in heldout.train + heldout.test)
    assert all_split(split.train).name == "all"


def test_the_checkpoint_records_what_it_trained_on(trained) -> None:
    for split in ("heldout", "all"):
        document = json.loads((trained[split] / "config.json").read_text())
        assert document["metadata"]["trained_on"] == split
    everything = [e for e in development_examples(trained["data"]) if e.labelled]
    all_document = json.loads((trained["all"] / "config.json").read_text())
    assert all_document["metadata"]["train_examples"] == len(everything)


def test_measuring_a_model_trained_on_everything_says_its_test_clips_are_not_unseen(
    trained,
) -> None:
    assert seen_test_note(trained["heldout"], "heldout") is None
    note = seen_test_note(trained["all"], "heldout")
    assert note is not None
    assert "lgfn-test-all" in note and "not of unseen songs" in note
    figures = {"n": 1, "accuracy_a": 1.0, "accuracy_b": 1.0, "difference": 0.0, "only_a": 0,
               "only_b": 0, "mcnemar_p": 1.0, "interval_95": [0.0, 0.0]}  # fmt: skip
    report = {"a": "x", "b": "y", "split": "heldout", "notes": [note]}
    report |= {label: figures for label in ("mood", "valence", "arousal")}
    assert note in format_comparison(report)


def test_train_refuses_to_evaluate_when_nothing_is_held_out(tmp_path, capsys) -> None:
    out = tmp_path / "model"
    code = lgfn_main(
        ["train", "--data", str(tmp_path), "--out", str(out), "--split", "all", "--evaluate"]
    )
    assert code == 2
    assert "--split all holds nothing out" in capsys.readouterr().err
    assert not out.exists()


def _clean(path: Path, condition: str = "clean") -> dict:
    return json.loads(path.read_text())["predictions"][condition]


def test_heldout_vs_crossval_pairs_the_same_clips(trained, tmp_path) -> None:
    data, run = trained["data"], trained["run"]
    examples = development_examples(data)
    # This tiny root's held-out split holds nothing out, so choose "held-out" clips here: one
    # with audio and one lyrics-only example.
    audio = next(e.id for e in examples if e.has_audio)
    lyrics = next(e.id for e in examples if not e.has_audio)
    out = tmp_path / "pair"
    folds = heldout_vs_crossval.pair_with_checkpoint(
        run, str(trained["heldout"]), examples, {audio, lyrics}, out, snrs=(0.0,),
        cache_dir=trained["cache"],
    )  # fmt: skip
    assert folds
    paired: set[str] = set()
    for fold in folds:
        ours, theirs = (
            _clean(out / "checkpoint" / f"{fold}.json"),
            _clean(out / "crossval" / f"{fold}.json"),
        )
        assert ours["id"] == theirs["id"]
        paired |= set(ours["id"])
        stored = _clean(run / f"{fold}.json")
        row = {i: k for k, i in enumerate(stored["id"])}
        for k, example_id in enumerate(theirs["id"]):  # the run's own predictions, untouched
            assert theirs["probs"][k] == stored["probs"][row[example_id]]
        for k in range(len(ours["id"])):
            assert np.isclose(sum(ours["probs"][k]), 1.0, atol=1e-3)
        noisy = _clean(out / "checkpoint" / f"{fold}.json", "snr_0db")
        assert all(i == audio for i in noisy["id"])  # only clips with audio hear noise
    assert paired == {audio, lyrics}


def test_heldout_vs_crossval_refuses_a_model_that_saw_the_heldout_clips(trained, tmp_path) -> None:
    with pytest.raises(ValueError, match="trained on all, not the held-out split"):
        heldout_vs_crossval.pair_with_checkpoint(
            trained["run"], str(trained["all"]), development_examples(trained["data"]),
            {"x"}, tmp_path / "o", cache_dir=trained["cache"],
        )  # fmt: skip


def test_heldout_vs_crossval_without_common_clips_is_a_clear_error(
    trained, tmp_path, capsys
) -> None:
    code = heldout_vs_crossval.main(
        ["--data", str(trained["data"]), "--run", str(trained["run"]), "--checkpoint",
         str(trained["heldout"]), "--out", str(tmp_path / "o"), "--cache", str(trained["cache"])]
    )  # fmt: skip
    assert code == 1
    assert "no fold tested a clip of the held-out split's test part" in capsys.readouterr().err
