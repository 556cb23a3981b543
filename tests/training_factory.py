"""Tiny training runs for tests: a real `train()` on four short clips in seconds.

from training_factory import jamendo_training_settings  # tests/ is on sys.path under pytest
settings = jamendo_training_settings(tmp_path, pretrained_noise=(0.0,))
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from audio_factory import write_mood_manifest

from lgfn_model.model.config import AudioConfig
from lgfn_model.testing import tiny_config
from lgfn_model.training.train import TrainSettings

# One 2.992 s patch of the MTG-Jamendo musicnn per window, at 16 kHz.
ONE_PATCH = AudioConfig(window_seconds=2.992, n_mels=32, n_fft=512, hop_length=256)


def jamendo_training_settings(folder: Path, **recipe: Any) -> TrainSettings:
    """The four-mood manifest written in ``folder`` and a tiny model with the MTG-Jamendo
    musicnn branch on one-patch windows, trained on the CPU for one epoch (``recipe``
    overrides any TrainSettings field), the checkpoint in ``folder/model``, the cache in
    ``folder/cache``."""
    config = tiny_config(pretrained_audio="musicnn-jamendo", audio=ONE_PATCH).validate()
    overrides = dataclasses.asdict(config)
    overrides.pop("version")
    overrides["audio"] = ONE_PATCH
    values: dict[str, Any] = {
        "data": write_mood_manifest(folder),
        "out": folder / "model",
        "cache": folder / "cache",
        "epochs": 1,
        "batch_size": 4,
        "workers": 0,
        "device": "cpu",
        "config_overrides": overrides,
    }
    values.update(recipe)
    return TrainSettings(**values)
