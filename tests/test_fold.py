"""Batch-norm folding: the folded model computes what the unfolded one did."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lgfn_model.runtime.checkpoint import load_checkpoint
from lgfn_model.runtime.fold import fold_batch_norms, folded_conv
from lgfn_model.testing import write_tiny_checkpoint


def _trained_norm(channels: int, dims: int) -> nn.Module:
    norm = nn.BatchNorm2d(channels) if dims == 2 else nn.BatchNorm1d(channels)
    generator = torch.Generator().manual_seed(channels)
    with torch.no_grad():
        norm.running_mean.copy_(torch.randn(channels, generator=generator))
        norm.running_var.copy_(torch.rand(channels, generator=generator) + 0.1)
        norm.weight.copy_(torch.randn(channels, generator=generator))
        norm.bias.copy_(torch.randn(channels, generator=generator))
    return norm.eval()


@pytest.mark.parametrize("dims", [1, 2])
def test_folded_conv_equals_conv_then_norm(dims: int) -> None:
    conv = (nn.Conv2d(3, 5, 3, 2, 1, bias=True) if dims == 2 else nn.Conv1d(3, 5, 8, 4, 4)).eval()
    norm = _trained_norm(5, dims)
    x = torch.randn(2, 3, 17, 19) if dims == 2 else torch.randn(2, 3, 101)
    fused = folded_conv(conv, norm)
    assert fused.bias is not None
    torch.testing.assert_close(fused(x), norm(conv(x)), rtol=1e-5, atol=1e-5)


def test_folding_a_model_keeps_its_outputs(tmp_path) -> None:
    model = load_checkpoint(write_tiny_checkpoint(tmp_path / "tiny"), device="cpu").eval()
    for module in model.modules():  # running statistics that are not the identity
        if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
            module.load_state_dict(_trained_norm(module.num_features, 2).state_dict())
    waves = torch.randn(3, int(model.config.audio.sample_rate * model.config.audio.window_seconds))
    starts = torch.tensor([0.0, 2.0, 4.0])
    with torch.inference_mode():
        before = model(waves, starts, None)
        norms = sum(isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d) for m in model.modules())
        assert fold_batch_norms(model) == norms > 0
        assert not any(isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d) for m in model.modules())
        after = model(waves, starts, None)
    torch.testing.assert_close(after.mood_logits, before.mood_logits, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(after.valence, before.valence, rtol=1e-4, atol=1e-4)
    assert fold_batch_norms(model) == 0  # nothing left to fold


def test_training_models_are_refused(tmp_path) -> None:
    model = load_checkpoint(write_tiny_checkpoint(tmp_path / "tiny"), device="cpu").train()
    with pytest.raises(ValueError, match="eval-mode"):
        fold_batch_norms(model)
