"""Helpers for tests: tiny random-weight checkpoints (never for real predictions)."""

from __future__ import annotations

from pathlib import Path

import torch

from lgfn_model.model.config import AudioConfig, LGFNConfig
from lgfn_model.model.network import build_lgfn
from lgfn_model.runtime.checkpoint import save_checkpoint


def tiny_config(version: str = "lgfn-test-tiny", **overrides: object) -> LGFNConfig:
    """A small LGFN with the real architecture: 2 s windows, narrow channels."""
    values: dict[str, object] = {
        "version": version,
        "audio": AudioConfig(window_seconds=2.0, n_mels=32, n_fft=512, hop_length=256),
        "d_model": 32,
        "frames_per_window": 4,
        "resnet_channels": (8, 16),
        "wave_channels": (8, 16, 16, 16),
        "pretrained_audio": None,
    }
    values.update(overrides)
    return LGFNConfig(**values)  # type: ignore[arg-type]


def write_tiny_checkpoint(
    directory: Path, seed: int = 0, version: str = "lgfn-test-tiny", **overrides: object
) -> Path:
    """Write a random-weight tiny checkpoint to ``directory`` and return it."""
    torch.manual_seed(seed)
    model = build_lgfn(tiny_config(version, **overrides)).eval()
    return save_checkpoint(model, directory, metadata={"purpose": "tests only, random weights"})
