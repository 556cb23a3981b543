"""`lgfn train --bf16` / `lgfn crossval --bf16`: the forward passes under bf16 on the CPU."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch


def test_the_cli_carries_it_and_crossval_keeps_old_fingerprints(tmp_path: Path) -> None:
    from lgfn_model.cli import build_parser
    from lgfn_model.cli.train import recipe_settings
    from lgfn_model.training.crossval import recipe_dict

    base = ["crossval", "--data", "d", "--folds", "5"]
    fast = recipe_settings(build_parser().parse_args([*base, "--bf16"]), Path("d"), tmp_path)
    assert fast.bf16 is True
    assert recipe_dict(fast)["bf16"] is True  # a recipe of its own: never reuses fp32 folds
    plain = recipe_settings(build_parser().parse_args(base), Path("d"), tmp_path)
    assert plain.bf16 is False
    assert "bf16" not in recipe_dict(plain)  # fold results stored before it stay valid
    train_args = build_parser().parse_args(["train", "--data", "d", "--out", "o", "--bf16"])
    assert recipe_settings(train_args, Path("d"), tmp_path).bf16 is True


@pytest.mark.parametrize("bf16", [False, True])
def test_a_real_training_runs_its_forward_passes_in_the_precision_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bf16: bool
) -> None:
    from training_factory import jamendo_training_settings

    import lgfn_model.training.train as training

    seen: set[torch.dtype] = set()
    build = training.build_lgfn

    def recording(*args: Any, **kwargs: Any) -> Any:
        model = build(*args, **kwargs)
        for module in model.modules():
            if isinstance(module, torch.nn.Conv1d | torch.nn.Conv2d | torch.nn.Linear):
                module.register_forward_hook(lambda _m, _i, out: seen.add(out.dtype))
        return model

    monkeypatch.setattr(training, "build_lgfn", recording)
    model, metadata = training.train(jamendo_training_settings(tmp_path, bf16=bf16))
    # The convolutions run in bf16; the gate and the heads cast back to float32 on purpose.
    assert (torch.bfloat16 in seen) is bf16 and torch.float32 in seen
    assert metadata["bf16_autocast"] is bf16
    assert all(math.isfinite(loss) for loss in metadata["loss_per_epoch"])
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights stay float32


@pytest.mark.parametrize("command", ["train", "distill"])
def test_bf16_on_a_cpu_without_bf16_hardware_says_it_is_emulated(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, command: str
) -> None:
    import lgfn_model.runtime.device as device
    from lgfn_model.cli import build_parser
    from lgfn_model.cli.common import warn_emulated_bf16

    parser = build_parser()
    with_bf16 = parser.parse_args([command, "--data", "d", "--out", "o", "--bf16"])
    without = parser.parse_args([command, "--data", "d", "--out", "o"])
    monkeypatch.setattr(device, "has_hardware_bf16", lambda: False)
    with caplog.at_level("WARNING", logger="lgfn_model"):
        warn_emulated_bf16(without)
        assert not caplog.records
        warn_emulated_bf16(with_bf16)
    assert "--bf16 on a CPU without hardware bf16" in caplog.text
    caplog.clear()
    monkeypatch.setattr(device, "has_hardware_bf16", lambda: True)
    warn_emulated_bf16(with_bf16)
    assert not caplog.records
