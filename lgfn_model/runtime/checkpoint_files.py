"""Checkpoint folders without torch: where they are, what their config.json says.

Torch-free so that the beets plugin can read a checkpoint's version (to skip items already
analysed by it) without loading the model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lgfn_model.model.config import ConfigError, check_config_dict, check_version

FORMAT = "lgfn-checkpoint"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
MAX_CONFIG_BYTES = 16 << 20
"""A config.json is a few kB (the shipped ones: 2-3 kB); one far larger is not a config, and
reading it whole would cost its size in memory."""


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message names the path and the reason."""


class CheckpointMissingError(CheckpointError):
    """No checkpoint where one was expected (e.g. no trained model is installed)."""


SHIPPED_MODELS: dict[str, str] = {
    "default": "the most accurate on songs it never heard, and fast (docs/model-card-default.md)",
    "musicnn": "an earlier default, with musicnn itself: slower (docs/model-card-musicnn.md)",
    "fast": "the default model, by the name its first version shipped under",
}
"""Models inside the package, by name: ``--checkpoint musicnn`` or ``emotion.checkpoint:
musicnn``."""

SHIPPED_FOLDERS: dict[str, str] = {"fast": "default"}
"""Names that are another shipped model's: ``fast`` became the default (lgfn-fast-20261202a,
since replaced by lgfn-fast-20261205a, lgfn-fast-20261206a and lgfn-fast-20261206b), and
configs that name it keep working: they get the default model, whatever its version."""


def shipped_checkpoint_dir(name: str) -> Path:
    folder = SHIPPED_FOLDERS.get(name, name)
    return Path(__file__).resolve().parents[1] / "weights" / folder


def default_checkpoint_dir() -> Path:
    """Where the package's own trained model lives."""
    return shipped_checkpoint_dir("default")


def resolve_checkpoint(checkpoint: str | Path | None) -> Path:
    """The folder of ``checkpoint``: None is the default model; a shipped model's name
    (``SHIPPED_MODELS``) is that model, unless a folder of that name exists here; anything
    else is a path."""
    if checkpoint is None:
        return default_checkpoint_dir()
    path = Path(checkpoint).expanduser()
    if str(checkpoint) in SHIPPED_MODELS and not path.exists():
        return shipped_checkpoint_dir(str(checkpoint))
    return path


def read_checkpoint_document(directory: str | Path) -> dict[str, Any]:
    """The parsed config.json of a checkpoint, validated for format and version."""
    directory = Path(directory)
    path = directory / CONFIG_FILE
    if not directory.exists():
        raise CheckpointMissingError(f"{directory}: checkpoint folder not found")
    if not path.is_file():
        raise CheckpointMissingError(f"{directory}: not an LGFN checkpoint (no {CONFIG_FILE})")
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise CheckpointError(
                f"{path}: unreadable checkpoint config ({size} bytes; a config.json has at "
                f"most {MAX_CONFIG_BYTES})"
            )
        document = json.loads(path.read_text(encoding="utf-8"))
    # RecursionError: JSON nested thousands deep ("[[[[..."), which json.loads cannot parse.
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else error
        raise CheckpointError(f"{path}: unreadable checkpoint config ({reason})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an LGFN checkpoint config")
    version = document.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r}, this lgfn_model reads {FORMAT_VERSION}"
        )
    return document


def check_checkpoint_config(checkpoint: str | Path | None = None) -> None:
    """Raise ``CheckpointError`` (one line naming the file and the field) when a checkpoint's
    config is out of bounds (``config.check_config_dict``), without importing torch: the
    plugin calls it before loading, so a bad config costs neither torch's import nor memory.
    A missing checkpoint passes: loading says what is missing, and how to get it."""
    directory = resolve_checkpoint(checkpoint)
    try:
        document = read_checkpoint_document(directory)
    except CheckpointMissingError:
        return
    try:
        check_config_dict(document.get("config"))
    except ConfigError as error:
        raise CheckpointError(f"{directory / CONFIG_FILE}: {error}") from None


def checkpoint_version(directory: str | Path | None = None) -> str:
    """The ``version`` in a checkpoint's config (default: the shipped model)."""
    directory = resolve_checkpoint(directory)
    config = read_checkpoint_document(directory).get("config")
    version = config.get("version") if isinstance(config, dict) else None
    if version is None:
        raise CheckpointError(f"{directory / CONFIG_FILE}: the config has no model version")
    try:
        # Checked here too: the plugin reads the version (and prints it, stores it in items)
        # without loading the model.
        return check_version(version)
    except ConfigError as error:
        raise CheckpointError(f"{directory / CONFIG_FILE}: {error}") from None
