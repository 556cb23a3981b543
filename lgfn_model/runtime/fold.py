"""Fold inference-time batch norms into the convolutions before them.

In eval mode a batch norm after a convolution is a per-channel ``scale * v + shift``; folded
into the convolution's weights and bias it costs nothing, where on the CPU the batch norms are
a visible share of a forward pass (torch's profiler shows it; docs/performance.md has the
current timings). Only pairs whose order is
certain are folded: a convolution directly followed by a batch norm inside an
``nn.Sequential``, and the ``conv1``/``bn1``, ``conv2``/``bn2`` pairs of the ResNet's
``BasicBlock``. A model folded this way cannot be trained and has a different ``state_dict``.
"""

from __future__ import annotations

import torch
from torch import nn

_CONVS = (nn.Conv1d, nn.Conv2d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


@torch.no_grad()
def folded_conv(conv: nn.Conv1d | nn.Conv2d, norm: nn.BatchNorm1d | nn.BatchNorm2d) -> nn.Module:
    """A convolution computing ``norm(conv(x))`` with ``norm``'s running statistics."""
    if norm.running_mean is None or norm.running_var is None:
        raise ValueError("a batch norm without running statistics cannot be folded")
    scale = torch.rsqrt(norm.running_var + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight
    shift = -norm.running_mean * scale
    if norm.bias is not None:
        shift = shift + norm.bias
    if conv.bias is not None:
        shift = shift + conv.bias * scale
    fused = type(conv)(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,  # type: ignore[arg-type]
        conv.stride,  # type: ignore[arg-type]
        conv.padding,  # type: ignore[arg-type]
        conv.dilation,  # type: ignore[arg-type]
        conv.groups,
        bias=True,
        padding_mode=conv.padding_mode,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
    )
    shape = (-1,) + (1,) * (conv.weight.dim() - 1)
    fused.weight.copy_(conv.weight * scale.reshape(shape))
    fused.bias.copy_(shift)
    # Keep the layout the model was given (channels-last for the 2-D branches).
    if conv.weight.is_contiguous(memory_format=torch.channels_last) and conv.weight.dim() == 4:
        fused.to(memory_format=torch.channels_last)
    return fused.eval()


def _foldable(module: nn.Module) -> bool:
    return isinstance(module, _NORMS) and module.running_mean is not None


def fold_batch_norms(model: nn.Module) -> int:
    """Fold, in place, every batch norm that directly follows a convolution; returns how many.
    ``model`` must be in eval mode (its batch norms use their running statistics)."""
    from lgfn_model.model.components import BasicBlock

    if model.training:
        raise ValueError("fold batch norms of an eval-mode model only")
    folded = 0
    for module in list(model.modules()):
        if isinstance(module, nn.Sequential):
            names = list(module._modules)
            for first, second in zip(names, names[1:], strict=False):
                conv, norm = module._modules[first], module._modules[second]
                if isinstance(conv, _CONVS) and _foldable(norm):
                    module._modules[first] = folded_conv(conv, norm)
                    module._modules[second] = nn.Identity()
                    folded += 1
        elif isinstance(module, BasicBlock):
            for conv_name, norm_name in (("conv1", "bn1"), ("conv2", "bn2")):
                norm = getattr(module, norm_name)
                if _foldable(norm):
                    setattr(module, conv_name, folded_conv(getattr(module, conv_name), norm))
                    setattr(module, norm_name, nn.Identity())
                    folded += 1
    return folded
