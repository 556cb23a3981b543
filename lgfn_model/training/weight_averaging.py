"""The mean of a model's weights over the last epochs of its training (``--average-epochs N``).

One training of a recipe is deterministic but chaotic: the same recipe run by code that differs
only in float rounding lands 9-10 points of MIREX-like mood apart on a fold
(docs/cross-validation.md). The weights at the end of the last N epochs lie along the final,
annealing stretch of the one-cycle schedule; their element-wise mean (stochastic weight
averaging, Izmailov et al. 2018, here over a decaying rate) sits nearer the middle of the region
the run explores, which tends to generalise better and to depend less on where the last steps
happened to stop. It costs nothing at run time: the averaged model is one model.

The average only watches: it copies the weights after each epoch and never touches the model,
the optimiser or a random generator, so a run with it follows exactly the path of the same run
without it, and its last epoch's weights are that run's model (saved beside as ``last-epoch/``,
which makes every averaged training a paired comparison with the plain recipe for free).

Batch-norm statistics are averaged like the weights rather than recomputed by another pass
over the training data: late in the schedule the weights move little, so the averaged
statistics are close to those the averaged weights would produce, and the measured result is
what counts (cross-validation).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

LAST_EPOCH_DIR = "last-epoch"
"""The subfolder of an averaged run's checkpoint holding its last epoch's own weights."""


def check_average_epochs(count: int, epochs: int) -> None:
    """Raise ValueError unless the last ``count`` of ``epochs`` epochs can be averaged."""
    if count < 1:
        raise ValueError("--average-epochs must be at least 1")
    if count > epochs:
        raise ValueError(f"--average-epochs {count} is more than the {epochs} epochs trained")


class EpochWeightAverage:
    """Running mean of a model's state at the end of each of a training's last ``count`` epochs."""

    def __init__(self, count: int, epochs: int) -> None:
        check_average_epochs(count, epochs)
        self.count = count
        self.first_epoch = epochs - count  # 0-based index of the first epoch averaged
        self.seen = 0
        self._sums: dict[str, torch.Tensor] = {}

    def after_epoch(self, epoch: int, model: torch.nn.Module) -> None:
        """Record the model's state at the end of 0-based ``epoch`` if it is one of the last."""
        if epoch < self.first_epoch:
            return
        with torch.no_grad():
            for name, value in model.state_dict().items():
                if not value.is_floating_point():
                    continue  # counters (batch norm's num_batches_tracked) keep the last value
                total = self._sums.get(name)
                if total is None:
                    # float64 sums: the mean of N float32 states without rounding drift
                    self._sums[name] = value.detach().to("cpu", torch.float64).clone()
                else:
                    total += value.detach().to("cpu", torch.float64)
        self.seen += 1

    def averaged_state(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """The model's state with every floating tensor replaced by its mean over the epochs
        recorded; raises RuntimeError before the last ``count`` epochs were all recorded."""
        if self.seen != self.count:
            raise RuntimeError(f"averaged {self.seen} of the last {self.count} epochs")
        state = model.state_dict()
        averaged = {}
        for name, value in state.items():
            total = self._sums.get(name)
            if total is None:
                averaged[name] = value
            else:
                averaged[name] = (total / self.seen).to(value.device, value.dtype)
        return averaged


def keep_last_epoch(
    model: torch.nn.Module, out: Path, metadata: dict[str, Any], average: EpochWeightAverage
) -> None:
    """Save ``model`` as it ended the last epoch to ``out/last-epoch``, then give it the
    averaged weights (the caller saves those to ``out``)."""
    from lgfn_model.runtime.checkpoint import save_checkpoint

    last = {**metadata, "average_epochs": None, "weights": "the last epoch's, not averaged"}
    save_checkpoint(model, Path(out) / LAST_EPOCH_DIR, metadata=last)  # type: ignore[arg-type]
    model.load_state_dict(average.averaged_state(model))
