"""The listener's learned mood head as the plugin uses it: where it lives, whether it fits the
model in use, and the shipped head that re-tags tracks back after ``--learn --reset``.

Torch-free (numpy and safetensors): re-tagging a library from stored embeddings loads no model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import fields
from .model import ModelHandle, ModelUnavailable


class PersonalHeadUnusable(Exception):
    """The stored head cannot be read; the message is one line saying what to do."""


def head_folder() -> Path:
    """Beside the library's configuration: ``<beets config folder>/emotion``."""
    from beets import config

    return Path(config.config_dir()) / "emotion"


@dataclass(frozen=True)
class Scorer:
    """A mood head with its labels: the listener's, or the shipped model's own."""

    labels: tuple[str, ...]
    head: Any  # lgfn_model.runtime.personal_head.Head
    version: str

    @property
    def dim(self) -> int:
        return int(self.head.dim)

    def probabilities(self, embedding: list[float]) -> dict[str, float]:
        values = self.head.probabilities([embedding])[0]
        return {label: float(p) for label, p in zip(self.labels, values, strict=True)}


class PersonalModel:
    """The head stored in ``folder`` (if any) for the model behind ``model``."""

    def __init__(self, model: ModelHandle, folder: Path | None = None) -> None:
        self.model = model
        self.folder = folder if folder is not None else head_folder()
        self._shipped: Scorer | None = None

    def stored(self) -> Any:
        """The stored ``PersonalHead``, whatever model it was fitted to; None when none."""
        from lgfn_model.runtime.personal_head import PersonalHeadError, load_personal_head

        try:
            return load_personal_head(self.folder)
        except PersonalHeadError as error:
            raise PersonalHeadUnusable(
                f"{error}; fix it with `beet emotion --learn` or `beet emotion --learn --reset`"
            ) from None

    def active(self, base: str) -> tuple[Scorer | None, str]:
        """The listener's head when it was fitted to ``base`` (the model in use), and a
        warning (or "") when a head is stored for another model."""
        personal = self.stored()
        if personal is None:
            return None, ""
        if personal.base != base:
            return None, (
                f"your learned moods ({personal.version}) were fitted to {personal.base}, not to "
                f"the model in use ({base}), so they are not used: run `beet emotion --learn` "
                "again to fit them to this model"
            )
        return Scorer(personal.labels, personal.head, personal.version), ""

    def shipped(self) -> Scorer:
        """The model's own mood head, read from its weights (no model load)."""
        if self._shipped is None:
            from lgfn_model.runtime.checkpoint_files import (
                CheckpointError,
                read_checkpoint_document,
                resolve_checkpoint,
            )
            from lgfn_model.runtime.personal_head import read_mood_head

            try:
                directory = resolve_checkpoint(self.model.checkpoint)
                labels = tuple(read_checkpoint_document(directory)["config"]["labels"])
                head = read_mood_head(directory)
            except (CheckpointError, KeyError, TypeError) as error:
                raise ModelUnavailable(" ".join(str(error).split())) from None
            self._shipped = Scorer(labels, head, self.model.version())
        return self._shipped

    def scorer(self, personal: Scorer | None) -> Scorer:
        return personal if personal is not None else self.shipped()


def stored_embedding(item: Any, base: str, dim: int) -> list[float] | None:
    """The item's stored embedding when the model ``base`` made it (analysed by it, with or
    without a listener's head) and it has ``dim`` finite values; None otherwise."""
    import math

    from lgfn_model.runtime.personal_head import base_version

    model = fields.own_value(item, fields.MODEL)
    if not model or base_version(str(model)) != base:
        return None
    embedding = fields.decode_embedding(fields.own_value(item, fields.EMBEDDING))
    if embedding is None or len(embedding) != dim or not all(map(math.isfinite, embedding)):
        return None
    return embedding


def shown(folder: Path) -> str:
    """``folder`` with the home folder as ``~``, as messages show paths."""
    home = os.path.expanduser("~")
    text = str(folder)
    return "~" + text[len(home) :] if home and text.startswith(home + os.sep) else text
