"""`--average-epochs N`: the saved model is the mean of the weights at the end of the last N
epochs; the training's path is untouched, so its last epoch is the plain recipe's model, and
`lgfn crossval` measures that too under the plain recipe's fingerprint."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from crossval_factory import make_crossval_data, tiny_recipe
from safetensors.torch import load_file

from lgfn_model.cli import main as lgfn_main
from lgfn_model.evaluation.crossval_compare import fold_results
from lgfn_model.training.crossval import CrossvalSettings, run_crossval
from lgfn_model.training.train import train
from lgfn_model.training.weight_averaging import LAST_EPOCH_DIR, EpochWeightAverage


def _net() -> torch.nn.Sequential:
    return torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))


def test_the_average_is_the_mean_of_the_last_epochs_states() -> None:
    net = _net()
    average = EpochWeightAverage(count=2, epochs=3)
    states = []
    for epoch in range(3):
        with torch.no_grad():
            for parameter in net.parameters():
                parameter.add_(float(epoch + 1))
            net[1].running_mean.fill_(10.0 * epoch)
            net[1].num_batches_tracked.fill_(epoch + 5)
        states.append({k: v.clone() for k, v in net.state_dict().items()})
        average.after_epoch(epoch, net)
    averaged = average.averaged_state(net)
    for name, value in averaged.items():
        if value.is_floating_point():
            expected = (states[1][name] + states[2][name]) / 2
            assert torch.allclose(value, expected), name
            assert value.dtype == states[2][name].dtype
    # Counters are not averaged: the last epoch's count stays.
    assert int(averaged["1.num_batches_tracked"]) == 7
    # The model itself is left as it is.
    assert torch.equal(net.state_dict()["0.weight"], states[2]["0.weight"])


def test_the_average_refuses_what_it_cannot_average() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        EpochWeightAverage(count=0, epochs=3)
    with pytest.raises(ValueError, match="more than the 3 epochs"):
        EpochWeightAverage(count=4, epochs=3)
    average = EpochWeightAverage(count=2, epochs=3)
    average.after_epoch(2, _net())
    with pytest.raises(RuntimeError, match="averaged 1 of the last 2"):
        average.averaged_state(_net())


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny data; the same 2-epoch recipe trained plainly and with --average-epochs 2."""
    base = tmp_path_factory.mktemp("average")
    data = make_crossval_data(base / "data")
    recipe = dataclasses.replace(tiny_recipe(data, base / "cache"), epochs=2)
    plain, averaged = base / "plain", base / "averaged"
    train(dataclasses.replace(recipe, out=plain))
    train(dataclasses.replace(recipe, out=averaged, average_epochs=2))
    return {"data": data, "cache": base / "cache", "plain": plain, "averaged": averaged}


def test_averaging_leaves_the_training_path_as_it_was(runs) -> None:
    plain = load_file(str(runs["plain"] / "model.safetensors"))
    last = load_file(str(runs["averaged"] / LAST_EPOCH_DIR / "model.safetensors"))
    averaged = load_file(str(runs["averaged"] / "model.safetensors"))
    assert plain.keys() == last.keys() == averaged.keys()
    # The averaged run's last epoch is the plain run's model, bit for bit ...
    assert all(torch.equal(plain[k], last[k]) for k in plain)
    # ... and the saved model is another one (the mean of two epochs' weights).
    moved = [
        k for k in plain if plain[k].is_floating_point() and not torch.equal(plain[k], averaged[k])
    ]
    assert moved


def test_the_checkpoints_say_which_weights_they_hold(runs) -> None:
    def metadata(path: Path) -> dict:
        return json.loads((path / "config.json").read_text())["metadata"]

    assert metadata(runs["averaged"])["average_epochs"] == 2
    assert metadata(runs["plain"])["average_epochs"] is None
    last = metadata(runs["averaged"] / LAST_EPOCH_DIR)
    assert last["average_epochs"] is None and "not averaged" in last["weights"]


def test_crossval_measures_the_last_epoch_as_the_plain_recipe(runs, tmp_path: Path) -> None:
    recipe = dataclasses.replace(tiny_recipe(runs["data"], runs["cache"]), epochs=2)
    out = tmp_path / "cv"
    averaged = dataclasses.replace(recipe, average_epochs=2)
    run_crossval(CrossvalSettings(data=runs["data"], recipe=averaged, out=out, folds=2, jobs=1))
    mine, last = fold_results(out), fold_results(out / LAST_EPOCH_DIR)
    assert sorted(mine) == sorted(last) == ["fold-1", "fold-2"]
    for name in mine:
        assert mine[name]["fingerprint"] != last[name]["fingerprint"]
        assert last[name]["checkpoint"].endswith(f"{name}/model/{LAST_EPOCH_DIR}")
        assert set(last[name]["predictions"]) == set(mine[name]["predictions"])
    # The last-epoch folder is a finished run of the plain recipe: pointed at it, a plain
    # run finds every fold done and trains nothing.
    report = run_crossval(
        CrossvalSettings(data=runs["data"], recipe=recipe, out=out / LAST_EPOCH_DIR, folds=2)
    )
    assert report["folds_done"] == 2
    assert report["cache_seconds"] == 0.0  # nothing was trained, so no cache was warmed


def test_lgfn_train_refuses_an_average_longer_than_the_training(tmp_path: Path, capsys) -> None:
    for value, message in (("0", "expected a positive integer"), ("5", "more than the 3")):
        with pytest.raises(SystemExit) as exited:
            lgfn_main(
                ["train", "--data", str(tmp_path), "--out", str(tmp_path / "m"), "--epochs", "3",
                 "--average-epochs", value]
            )  # fmt: skip
        assert exited.value.code == 2
        assert message in capsys.readouterr().err
