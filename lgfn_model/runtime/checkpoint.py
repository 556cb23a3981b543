"""Checkpoints: a folder with ``model.safetensors`` (tensors only) and ``config.json``.

Loading never unpickles: safetensors holds raw tensors and the config is JSON, so a tampered
checkpoint can at worst fail to load, never run code. Nor can it make loading eat memory: the
config is checked against bounds (``config.check_config_dict``), the model it describes is
built on the meta device (shapes, no memory) and compared with the tensor shapes in the
safetensors header, and only a checkpoint that passes all three is allocated and read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch.overrides import TorchFunctionMode

from lgfn_model.model.config import ConfigError, LGFNConfig
from lgfn_model.model.fusion import migrate_state_names
from lgfn_model.model.network import LGFN
from lgfn_model.runtime.checkpoint_files import (
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

MAX_PARAMETERS = 100_000_000
"""The most parameters a checkpoint's model may have: 400 MB of float32, 50x the largest real
model (the shipped "default": 1.9 M, "musicnn": 1.3 M). Bounds on each field alone still allow
configs of billions (every channel list at its maximum)."""

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
    config_path = directory / CONFIG_FILE
    try:
        config = LGFNConfig.from_dict(document["config"])
    except KeyError:
        raise CheckpointError(f"{config_path}: no model config in it") from None
    except ConfigError as error:
        raise CheckpointError(f"{config_path}: {error}") from None
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{directory}: {WEIGHTS_FILE} is missing")
    header = migrate_state_names(_header_shapes(weights), config.fusion)
    expected = _expected_shapes(config, config_path)
    missing = sorted(set(expected) - set(header))
    unexpected = sorted(set(header) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{weights}: weights do not fit the config "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    for name, shape in header.items():
        if shape != expected[name]:
            raise CheckpointError(
                f"{weights}: {name} has shape {shape}, the config needs {expected[name]}"
            )
    # Only now, with the config in bounds and every tensor of the size it builds, allocate.
    model = LGFN(config)
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{weights}: not a valid safetensors file ({error})") from None
    model.load_state_dict(migrate_state_names(state, config.fusion))
    return model.to(device).eval()


def _header_shapes(weights: Path) -> dict[str, tuple[int, ...]]:
    """Each tensor's shape from the safetensors header, reading no tensor data."""
    try:
        with safe_open(str(weights), framework="pt") as handle:
            names = list(handle.keys())  # a safe_open handle has keys() but no __iter__
            return {name: tuple(handle.get_slice(name).get_shape()) for name in names}
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{weights}: not a valid safetensors file ({error})") from None


class _NoValues(TorchFunctionMode):
    """Under the meta device, take a meta tensor's truth value as False.

    Meta tensors have shapes but no values; the one constructor that looks at values is
    torchaudio's mel filter bank, which only warns when a filter is all zeros."""

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        if func is torch.Tensor.__bool__ and args and args[0].is_meta:
            return False
        return func(*args, **(kwargs or {}))


def _expected_shapes(config: LGFNConfig, config_path: Path) -> dict[str, tuple[int, ...]]:
    """The state-dict shapes the config builds, from a build on the meta device (no memory,
    ~10 ms), and the parameter count checked against ``MAX_PARAMETERS``."""
    try:
        with torch.device("meta"), _NoValues():
            model = LGFN(config)
    except (ValueError, TypeError, RuntimeError) as error:
        # Bounds should rule these out; one line all the same if some combination slips by.
        reason = " ".join(str(error).split())
        raise CheckpointError(f"{config_path}: the config builds no model ({reason})") from None
    parameters = sum(p.numel() for p in model.parameters())
    if parameters > MAX_PARAMETERS:
        raise CheckpointError(
            f"{config_path}: the config builds a model of {parameters:,} parameters; "
            f"allowed at most {MAX_PARAMETERS:,}"
        )
    return {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}


def checkpoint_metadata(directory: str | Path | None = None) -> dict[str, Any]:
    directory = resolve_checkpoint(directory)
    return read_checkpoint_document(directory).get("metadata", {})
