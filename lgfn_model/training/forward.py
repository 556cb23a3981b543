"""The model on one training batch, under the precision training runs at."""

from __future__ import annotations

from typing import Any

import torch

from lgfn_model.model.network import LGFN


def forward_batch(model: LGFN, batch: Any) -> Any:
    """``model`` on a training batch (with its cached musicnn features, and the clean windows
    for its pretrained or distilled branch, if the batch has them)."""
    return model(
        batch.waveforms,
        batch.starts,
        batch.lyrics,
        batch.audio_present,
        pretrained_features=batch.pretrained,
        pretrained_waveforms=batch.clean_waveforms,
    )


def training_autocast(device: torch.device, bf16: bool) -> Any:
    """bf16 autocast on a GPU always and on the CPU with ``--bf16``; float32 otherwise."""
    if device.type == "cuda" or bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)
