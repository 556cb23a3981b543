"""`--dataset-weight DATASET=W`: every loss of a dataset's examples scaled by W."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch.nn import functional as F  # noqa: N812

from lgfn_model.training.batches import LoadedExample, targets_of
from lgfn_model.training.dataset_weighting import check_dataset_weights
from lgfn_model.training.datasets import Example
from lgfn_model.training.losses import losses, teacher_losses

EXAMPLES = [
    Example("mirex:1", "mirex", None, None, 0, 1.0, 1.0),
    Example("nju:1", "nju", None, None, 2, -1.0, -1.0),
    Example("nju:2", "nju", None, None, 1, -1.0, 1.0),
]


def _outputs(seed: int) -> SimpleNamespace:
    """Model outputs of one window per example (so pooling changes nothing)."""
    generator = torch.Generator().manual_seed(seed)
    return SimpleNamespace(
        mood_logits=torch.randn(3, 4, generator=generator),
        valence=torch.rand(3, generator=generator) * 1.8 - 0.9,
        arousal=torch.rand(3, generator=generator) * 1.8 - 0.9,
    )


def _label_loss_of(out: SimpleNamespace, k: int) -> torch.Tensor:
    """Example k's label loss alone, as ``losses`` computes it for a batch of one."""
    one = SimpleNamespace(**{name: value[k : k + 1] for name, value in vars(out).items()})
    return losses(one, torch.zeros(1, dtype=torch.long), 1, targets_of([EXAMPLES[k]]))


def test_targets_carry_each_examples_weight_by_its_dataset() -> None:
    assert targets_of(EXAMPLES).weight is None  # unweighted: the old path, unchanged
    weights = targets_of(EXAMPLES, None, {"nju": 0.1}).weight
    assert weights is not None and weights.tolist() == pytest.approx([1.0, 0.1, 0.1])


def test_a_weighted_example_pulls_that_much_of_its_label_loss() -> None:
    out = _outputs(0)
    index = torch.arange(3)
    plain = losses(out, index, 3, targets_of(EXAMPLES))
    ones = losses(out, index, 3, targets_of(EXAMPLES, None, {"nju": 1.0}))
    torch.testing.assert_close(ones, plain)
    each = [_label_loss_of(out, k) for k in range(3)]
    torch.testing.assert_close(plain, sum(each) / 3)  # every label is known: a plain mean
    weighted = losses(out, index, 3, targets_of(EXAMPLES, None, {"nju": 0.1}))
    torch.testing.assert_close(weighted, (each[0] + 0.1 * each[1] + 0.1 * each[2]) / 3)


def test_a_weighted_example_pulls_that_much_of_its_teachers_loss() -> None:
    out, teacher = _outputs(1), _outputs(2)
    index = torch.arange(3)
    unweighted = teacher_losses(out, teacher, index, 3, 2.0)
    kl = F.kl_div(
        F.log_softmax(out.mood_logits / 2, -1),
        F.log_softmax(teacher.mood_logits / 2, -1),
        log_target=True,
        reduction="batchmean",
    )
    assert unweighted.item() > kl.item() * 4  # the signs' losses come on top
    weight = torch.tensor([1.0, 0.0001, 0.0001])
    nearly_first_only = teacher_losses(out, teacher, index, 3, 2.0, weight)
    first = teacher_losses(
        *(SimpleNamespace(**{n: v[:1] for n, v in vars(o).items()}) for o in (out, teacher)),
        torch.zeros(1, dtype=torch.long),
        1,
        2.0,
    )
    torch.testing.assert_close(nearly_first_only, first / 3, atol=1e-3, rtol=1e-3)


def _item(dataset: str) -> LoadedExample:
    return LoadedExample(Example(f"{dataset}:1", dataset, None, None, 0, 1.0, 1.0), None, None)


def test_unknown_datasets_and_weights_of_zero_are_refused() -> None:
    items = [_item("mirex"), _item("nju")]
    check_dataset_weights(items, {"nju": 0.1})
    with pytest.raises(ValueError, match=r"--dataset-weight njv=0.1: no training examples"):
        check_dataset_weights(items, {"njv": 0.1})
    with pytest.raises(ValueError, match="must be above 0"):
        check_dataset_weights(items, {"nju": 0.0})


def test_the_cli_carries_it_and_crossval_keeps_old_fingerprints(tmp_path: Path) -> None:
    from lgfn_model.cli import build_parser
    from lgfn_model.cli.train import recipe_settings
    from lgfn_model.training.crossval import recipe_dict

    base = ["crossval", "--data", "d", "--folds", "5"]
    args = build_parser().parse_args(
        [*base, "--dataset-weight", "nju=0.1", "--dataset-weight", "moodylyrics=0.25"]
    )
    weighted = recipe_settings(args, Path("d"), tmp_path)
    assert weighted.dataset_weights == {"nju": 0.1, "moodylyrics": 0.25}
    assert recipe_dict(weighted)["dataset_weights"] == {"nju": 0.1, "moodylyrics": 0.25}
    plain = recipe_settings(build_parser().parse_args(base), Path("d"), tmp_path)
    assert "dataset_weights" not in recipe_dict(plain)  # fold results stored before stay valid
    for bad in ("nju", "nju=0", "=0.5", "nju=x"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([*base, "--dataset-weight", bad])


def test_a_real_training_records_it(tmp_path: Path) -> None:
    from training_factory import jamendo_training_settings

    from lgfn_model.training.train import train

    settings = jamendo_training_settings(tmp_path, batch_size=2, dataset_weights={"manifest": 0.5})
    _, metadata = train(settings)
    assert metadata["dataset_weights"] == {"manifest": 0.5}
    with pytest.raises(ValueError, match="no training examples of 'nju'"):
        train(jamendo_training_settings(tmp_path, dataset_weights={"nju": 0.5}))
