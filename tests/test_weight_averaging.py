"""`--average-epochs N`: the saved model is the mean of the weights at the end of the last N
epochs; the training's path is untouched, so its last epoch is the plain recipe's model, and
`lgfn crossval` measures that too under the plain recipe's fingerprint. `--average-rate F`
holds the rate over those epochs instead (another path) and recomputes batch-norm statistics."""

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
from lgfn_model.training.weight_averaging import (
    LAST_EPOCH_DIR,
    EpochWeightAverage,
    rate_schedule,
    recompute_batch_norm,
)


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
    plain, averaged, held = base / "plain", base / "averaged", base / "held"
    train(dataclasses.replace(recipe, out=plain))
    train(dataclasses.replace(recipe, out=averaged, average_epochs=2))
    train(dataclasses.replace(recipe, out=held, epochs=3, average_epochs=2, average_rate=0.5))
    return {"data": data, "cache": base / "cache", "plain": plain, "averaged": averaged,
            "held": held}  # fmt: skip


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


def _rates(average_epochs: int, average_rate: float, epochs: int = 4, steps: int = 5) -> list:
    """Each group's rate at every optimiser step of a schedule (two groups, peaks 1 and 0.1)."""
    weights = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.AdamW([{"params": [weights[0]], "lr": 1.0},
                                   {"params": [weights[1]], "lr": 0.1}])  # fmt: skip
    schedule = rate_schedule(optimizer, epochs, steps, average_epochs, average_rate)
    rates = []
    for _ in range(epochs * steps):
        rates.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        schedule.step()
    return rates


def test_a_held_rate_anneals_to_its_share_of_each_peak_and_stays() -> None:
    held = _rates(average_epochs=2, average_rate=0.25)
    assert max(r[0] for r in held) == pytest.approx(1.0, abs=0.02)  # the peak, near step 1.5
    # The averaged epochs (steps 10-19): each group at a quarter of its own peak, throughout.
    for rates in held[10:]:
        assert rates == pytest.approx([0.25, 0.025])
    assert held[8][0] > 0.25  # still annealing before them
    # Without a held rate: the one cycle over all epochs, ending near zero.
    plain = _rates(average_epochs=2, average_rate=0.0)
    assert plain[-1][0] < 0.01 and plain[10][0] > plain[15][0]


def test_batch_norm_statistics_are_recomputed_only_where_training_updates_them() -> None:
    class KeptNorm(torch.nn.BatchNorm1d):  # stays in eval mode, as a distilled student's do
        def train(self, mode: bool = True) -> KeptNorm:
            return super().train(False)

    net = torch.nn.Sequential(torch.nn.BatchNorm1d(2), KeptNorm(2))
    net[0].running_mean.fill_(5.0)
    net[1].running_mean.fill_(7.0)
    batches = [torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[5.0, 6.0], [7.0, 8.0]])]

    def run() -> None:
        for batch in batches:
            net(batch)

    assert recompute_batch_norm(net, run) == 1
    # The plain mean over the pass (momentum restored afterwards), not a moving average.
    assert net[0].running_mean.tolist() == pytest.approx([4.0, 5.0])
    assert net[0].momentum == 0.1 and not net.training
    assert net[1].running_mean.tolist() == [7.0, 7.0]


def test_a_held_rate_takes_another_path_and_records_the_recompute(runs) -> None:
    def metadata(path: Path) -> dict:
        return json.loads((path / "config.json").read_text())["metadata"]

    held = metadata(runs["held"])
    assert held["average_rate"] == 0.5 and held["average_epochs"] == 2
    assert held["batch_norm_recomputed"] > 0
    assert metadata(runs["averaged"])["average_rate"] is None
    assert (runs["held"] / LAST_EPOCH_DIR / "model.safetensors").exists()


def test_crossval_with_a_held_rate_measures_the_average_only(runs, tmp_path: Path) -> None:
    recipe = dataclasses.replace(tiny_recipe(runs["data"], runs["cache"]), epochs=2)
    held = dataclasses.replace(recipe, average_epochs=1, average_rate=0.5)
    out = tmp_path / "cv"
    run_crossval(CrossvalSettings(data=runs["data"], recipe=held, out=out, folds=2, only=(1,)))
    assert sorted(fold_results(out)) == ["fold-1"]
    # Its last epoch is not the plain recipe's model, so it is not filed as one.
    assert not (out / LAST_EPOCH_DIR).exists()


def test_lgfn_train_refuses_a_rate_it_cannot_hold(tmp_path: Path, capsys) -> None:
    base = ["train", "--data", str(tmp_path), "--out", str(tmp_path / "m"), "--epochs", "3"]
    for extra, message in (
        (["--average-rate", "0.2"], "--average-rate needs --average-epochs"),
        (["--average-epochs", "2", "--average-rate", "1.5"], "not a share of the peak"),
        (["--average-epochs", "3", "--average-rate", "0.2"], "is all 3 epochs"),
    ):
        with pytest.raises(SystemExit) as exited:
            lgfn_main([*base, *extra])
        assert exited.value.code == 2, extra
        assert message in capsys.readouterr().err
