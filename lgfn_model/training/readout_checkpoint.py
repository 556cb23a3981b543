"""`lgfn readout`: a trained checkpoint given a lyrics read-out, fitted on its own examples.

Apart from ``lyrics_readout_fit`` (which training imports) because it deals the checkpoint's
split again (``trained_split``), which needs the training and cross-validation code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from lgfn_model.model.network import LGFN
from lgfn_model.runtime.checkpoint import checkpoint_metadata, load_checkpoint, save_checkpoint
from lgfn_model.training.cache import FeatureCache
from lgfn_model.training.lyrics_readout_fit import (
    FUSION,
    STRENGTH,
    attach_readout,
    describe,
    fit_readout,
    require_song_text,
    whole_text_rows,
)
from lgfn_model.training.trained_split import trained_examples


def readout_onto_checkpoint(
    checkpoint: str | Path,
    data: Path,
    out: Path,
    cache: FeatureCache,
    dataset_weights: Mapping[str, float] | None = None,
    strength: float = STRENGTH,
    fusion: Sequence[float] = FUSION,
    version: str | None = None,
) -> tuple[LGFN, dict[str, Any]]:
    """Fit a read-out on the examples ``checkpoint`` was trained on (dealt again from
    ``data``: ``training.trained_split``) and save the model with it to ``out``, as
    ``version`` (default: the checkpoint's own with ``-readout`` after it). The network's
    weights are copied untouched."""
    model = load_checkpoint(checkpoint)
    require_song_text(model)  # before any text is embedded for it
    metadata = dict(checkpoint_metadata(checkpoint))
    examples = trained_examples(metadata, data)
    rows = whole_text_rows(examples, cache, model.config.text_encoder)
    fit = fit_readout(rows, dataset_weights, strength)
    attach_readout(model, fit, fusion)
    network = model.config.version
    model.config = replace(model.config, version=version or f"{network}-readout")
    model.config.validate()
    described = describe(fit, fusion, dict(dataset_weights or {}), strength)
    metadata["lyrics_readout"] = {**described, "added_to": network}
    save_checkpoint(model, out, metadata=metadata)
    return model, metadata
