"""How much each dataset counts in training: more often (``--oversample DATASET=N``) or with a
lighter loss (``--dataset-weight DATASET=W``).

Oversampling repeats a set's examples within each epoch (other random windows, noise and
lyrics drops each time). A dataset weight scales every loss of that set's examples, the
labels' and the teacher's alike, while the batch's loss stays a mean over its examples: a
set at 0.1 moves the weights a tenth as much as it would at 1, however many of its examples a
batch holds. The lyrics-only sets (NJU, MoodyLyrics4Q) outnumber the MIREX-like songs with
lyrics five to one, and a linear probe of the lyrics encoder reads the MIREX-like songs' moods
far better when those sets weigh less (docs/cross-validation.md): the weight is how a recipe
tries that inside the network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch


def _present(items: Sequence[Any]) -> list[str]:
    return sorted({i.example.dataset for i in items})


def _check_names(items: Sequence[Any], values: Mapping[str, float], option: str) -> None:
    present = _present(items)
    for name, value in values.items():
        if name not in present:
            raise ValueError(
                f"{option} {name}={value:g}: no training examples of {name!r} "
                f"(datasets here: {', '.join(present)})"
            )


def oversampled(items: list[Any], times: dict[str, int]) -> list[Any]:
    """``items`` with those of each dataset in ``times`` repeated that many times in all (the
    same objects: their features are loaded once)."""
    if not times:
        return items
    _check_names(items, times, "--oversample")
    for name, count in times.items():
        if count < 1:
            raise ValueError(f"--oversample {name}={count}: the count must be at least 1")
    extra = [i for i in items for _ in range(times.get(i.example.dataset, 1) - 1)]
    return items + extra


def check_dataset_weights(items: Sequence[Any], weights: Mapping[str, float]) -> None:
    """Every weighted dataset has training examples, and every weight is above 0 (a set that
    should not count at all is left out of the data instead)."""
    _check_names(items, weights, "--dataset-weight")
    for name, weight in weights.items():
        if not weight > 0:
            raise ValueError(f"--dataset-weight {name}={weight:g}: the weight must be above 0")


def check_readout_weights(items: Sequence[Any], weights: Mapping[str, float]) -> None:
    """Every dataset weighed in the lyrics read-out's fit has training examples among
    ``items`` (those with lyrics), checked before training, not after it."""
    _check_names(items, weights, "--readout-weight")


def example_weights(datasets: Sequence[str], weights: Mapping[str, float]) -> torch.Tensor | None:
    """(B,) the loss weight of each example by its dataset (1 where not given); None without
    weights, so the losses take their unweighted path."""
    if not weights:
        return None
    return torch.tensor([float(weights.get(name, 1.0)) for name in datasets])


def weighted_mean(values: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """The mean of per-example ``values``, each scaled by its weight (the count, not the
    weights' sum, divides: a light set's examples pull less, whatever the batch holds)."""
    if weight is None:
        return values.mean()
    return (values * weight.to(values.dtype)).sum() / values.numel()
