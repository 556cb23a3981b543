"""`--mood-mask`: each example's mood loss runs over the moods its dataset names."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch.nn import functional as F  # noqa: N812

from lgfn_model.training.batches import targets_of
from lgfn_model.training.datasets import Example
from lgfn_model.training.losses import losses, moods_named

HAPPY, ANGRY, SAD, RELAXED = range(4)


def _example(dataset: str, mood: int | None) -> Example:
    return Example(f"{dataset}:{mood}", dataset, None, None, mood, None, None)


def _outputs(logits: torch.Tensor) -> SimpleNamespace:
    n = logits.shape[0]
    return SimpleNamespace(mood_logits=logits, valence=torch.zeros(n), arousal=torch.zeros(n))


def test_only_a_dataset_that_leaves_a_mood_out_is_listed() -> None:
    examples = [_example("mirex", m) for m in (HAPPY, ANGRY, SAD, None)]
    examples += [_example("4q", m) for m in range(4)] + [_example("nju", None)]
    assert moods_named(examples) == {"mirex": (HAPPY, ANGRY, SAD)}


def test_the_loss_runs_over_the_named_moods_only() -> None:
    examples = [_example("mirex", SAD), _example("4q", SAD)]
    named = {"mirex": (HAPPY, ANGRY, SAD)}
    targets = targets_of(examples, named)
    assert targets.mood_allowed.tolist() == [[True, True, True, False], [True] * 4]
    logits = torch.tensor([[0.5, -1.0, 1.0, 2.0], [0.5, -1.0, 1.0, 2.0]], requires_grad=True)
    track = torch.arange(2)
    masked = losses(_outputs(logits), track, 2, targets)
    # the MIREX-like clip: a 3-way softmax; the 4Q clip: the 4-way one
    expected = (
        F.cross_entropy(logits[:1, :3], torch.tensor([SAD]))
        + F.cross_entropy(logits[1:], torch.tensor([SAD]))
    ) / 2
    assert float(masked.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    masked.backward()
    assert float(logits.grad[0, RELAXED]) == 0.0  # MIREX-like says nothing about relaxed
    assert float(logits.grad[1, RELAXED]) > 0.0  # 4Q does: this sad clip is not relaxed
    plain = losses(_outputs(logits.detach()), track, 2, targets_of(examples))
    assert float(plain) > float(masked.detach())  # the relaxed logit of 2.0 costs only unmasked


def test_the_cli_carries_it_and_crossval_keeps_old_fingerprints(tmp_path: Path) -> None:
    from lgfn_model.cli import build_parser
    from lgfn_model.cli.train import recipe_settings
    from lgfn_model.training.crossval import recipe_dict

    base = ["crossval", "--data", "d", "--leave-out", "4q"]
    masked = recipe_settings(build_parser().parse_args([*base, "--mood-mask"]), Path("d"), tmp_path)
    assert masked.mood_mask and recipe_dict(masked)["mood_mask"] is True
    plain = recipe_settings(build_parser().parse_args(base), Path("d"), tmp_path)
    assert "mood_mask" not in recipe_dict(plain)  # fold results stored before it stay valid


def test_a_real_training_records_the_named_moods(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from training_factory import jamendo_training_settings

    from lgfn_model.training.train import train

    # The four-mood manifest without its relaxed clip: a source that never says relaxed.
    settings = jamendo_training_settings(tmp_path, batch_size=2, mood_mask=True)
    rows = settings.data.read_text().splitlines()
    settings.data.write_text("\n".join(r for r in rows if not r.startswith("relaxed,")) + "\n")
    with caplog.at_level("INFO", logger="lgfn_model.training.train"):
        _, metadata = train(settings)
    named = {"manifest": ["happy", "angry", "sad"]}
    assert f"mood loss over the moods each dataset names: {named}" in caplog.text
    assert metadata["mood_mask"] == named
