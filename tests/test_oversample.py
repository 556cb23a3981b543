"""`--oversample DATASET=N`: a dataset's training examples seen N times an epoch."""

from __future__ import annotations

from pathlib import Path

import pytest

from lgfn_model.training.batches import LoadedExample
from lgfn_model.training.dataset_weighting import oversampled
from lgfn_model.training.datasets import Example


def _item(dataset: str, n: int) -> LoadedExample:
    example = Example(f"{dataset}:{n}", dataset, None, None, 0, 1.0, 1.0)
    return LoadedExample(example, None, None)


def test_the_named_datasets_repeat_and_the_rest_stay_once() -> None:
    items = [_item("mirex", 1), _item("4q", 1), _item("mirex", 2)]
    assert oversampled(items, {}) is items
    epoch = oversampled(items, {"mirex": 3})
    assert sorted(i.example.id for i in epoch) == ["4q:1"] + ["mirex:1"] * 3 + ["mirex:2"] * 3
    assert all(any(i is j for j in items) for i in epoch)  # the same objects, loaded once


def test_a_dataset_that_is_not_there_is_named_with_the_ones_that_are() -> None:
    with pytest.raises(
        ValueError,
        match=r"--oversample mirx=2: no training examples of 'mirx' \(datasets here: 4q, mirex\)",
    ):
        oversampled([_item("mirex", 1), _item("4q", 1)], {"mirx": 2})


def test_the_cli_carries_it_and_crossval_keeps_old_fingerprints(tmp_path: Path) -> None:
    from lgfn_model.cli import build_parser
    from lgfn_model.cli.train import recipe_settings
    from lgfn_model.training.crossval import recipe_dict

    base = ["crossval", "--data", "d", "--folds", "5"]
    args = build_parser().parse_args([*base, "--oversample", "mirex=2", "--oversample", "4q=3"])
    weighted = recipe_settings(args, Path("d"), tmp_path)
    assert weighted.oversample == {"mirex": 2, "4q": 3}
    assert recipe_dict(weighted)["oversample"] == {"mirex": 2, "4q": 3}
    plain = recipe_settings(build_parser().parse_args(base), Path("d"), tmp_path)
    assert "oversample" not in recipe_dict(plain)  # fold results stored before it stay valid
    with pytest.raises(SystemExit):
        build_parser().parse_args([*base, "--oversample", "mirex"])


def test_a_real_training_takes_more_steps_and_records_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from training_factory import jamendo_training_settings

    from lgfn_model.training.train import train

    settings = jamendo_training_settings(tmp_path, batch_size=2, oversample={"manifest": 2})
    with caplog.at_level("INFO", logger="lgfn_model.training.train"):
        _, metadata = train(settings)
    assert "8 examples an epoch with --oversample" in caplog.text
    assert metadata["oversample"] == {"manifest": 2}
    assert metadata["train_examples"] == 4  # distinct examples, not the repeats
