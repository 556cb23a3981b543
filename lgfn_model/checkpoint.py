"""Checkpoints: a folder with ``model.safetensors`` (tensors only) and ``config.json``.

Loading never unpickles: safetensors holds raw tensors and the config is JSON, so a tampered
checkpoint can at worst fail to load, never run code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .checkpoint_files import (
    CONFIG_FILE,
    FORMAT,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    CheckpointError,
    CheckpointMissingError,
    default_checkpoint_dir,
    read_checkpoint_document,
    resolve_checkpoint,
)
from .config import LGFNConfig
from .model import LGFN

__all__ = [
    "CheckpointError",
    "CheckpointMissingError",
    "checkpoint_metadata",
    "default_checkpoint_dir",
    "load_checkpoint",
    "read_checkpoint_document",
    "save_checkpoint",
]


def save_checkpoint(
    model: LGFN, directory: str | Path, metadata: dict[str, Any] | None = None
) -> Path:
    """Write ``model`` to ``directory`` (created if needed) and return the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": FORMAT})
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "label_map": {str(i): label for i, label in enumerate(model.config.labels)},
        "metadata": metadata or {},
    }
    (directory / CONFIG_FILE).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return directory


def load_checkpoint(
    directory: str | Path | None = None, device: str | torch.device = "cpu"
) -> LGFN:
    """Rebuild the model from a checkpoint folder or a shipped model's name (default: the
    shipped default model), in eval mode."""
    shipped = directory is None
    directory = resolve_checkpoint(directory)
    try:
        document = read_checkpoint_document(directory)
    except CheckpointMissingError:
        if shipped:
            raise CheckpointMissingError(
                "no trained LGFN model is installed with this package yet; "
                "train one with `lgfn train` and pass it with --checkpoint"
            ) from None
        raise
    try:
        config = LGFNConfig.from_dict(document["config"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{directory}: invalid model config ({error})") from None
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{directory}: {WEIGHTS_FILE} is missing")
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{weights}: not a valid safetensors file ({error})") from None
    model = LGFN(config, load_pretrained=False)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{weights}: weights do not fit the config "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise CheckpointError(
                f"{weights}: {name} has shape {tuple(tensor.shape)}, "
                f"the config needs {tuple(expected[name].shape)}"
            )
    model.load_state_dict(state)
    return model.to(device).eval()


def checkpoint_metadata(directory: str | Path | None = None) -> dict[str, Any]:
    directory = resolve_checkpoint(directory)
    return read_checkpoint_document(directory).get("metadata", {})
