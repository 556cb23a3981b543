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

``--average-rate F`` is stochastic weight averaging proper: the one-cycle schedule then runs
over the epochs before the averaged ones and anneals to F times each group's peak rate instead
of to nearly zero, and the rate is held there over the averaged epochs, so they keep exploring
and their mean sits in the middle of a wider region. That changes the training's path, so its
last epoch is no longer the plain recipe's model (cross-validation measures only the average),
and the averaged weights' batch-norm statistics are recomputed by one pass over the training
data (:func:`recompute_batch_norm`): weights that far apart average to a network no epoch's
statistics describe.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lgfn_model.training.batches import training_batch
from lgfn_model.training.forward import forward_batch, training_autocast

if TYPE_CHECKING:
    from lgfn_model.model.config import LGFNConfig
    from lgfn_model.model.network import LGFN
    from lgfn_model.training.batches import LoadedExample

LAST_EPOCH_DIR = "last-epoch"
"""The subfolder of an averaged run's checkpoint holding its last epoch's own weights."""


def check_average_epochs(count: int, epochs: int, rate: float = 0.0) -> None:
    """Raise ValueError unless the last ``count`` of ``epochs`` epochs can be averaged, at a
    held ``rate`` (a share of the peak) or, with 0, along the anneal."""
    if count < 1:
        raise ValueError("--average-epochs must be at least 1")
    if count > epochs:
        raise ValueError(f"--average-epochs {count} is more than the {epochs} epochs trained")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"--average-rate {rate:g} is not a share of the peak rate (0 to 1)")
    if rate and count == epochs:
        raise ValueError(
            "--average-rate needs epochs before the averaged ones to warm up and anneal in: "
            f"--average-epochs {count} is all {epochs} epochs"
        )


def rate_schedule(
    optimizer: torch.optim.Optimizer,
    epochs: int,
    steps_per_epoch: int,
    average_epochs: int = 0,
    average_rate: float = 0.0,
) -> Any:
    """The learning-rate schedule, stepped once per optimiser step.

    Without a held rate: one cycle over the whole training (warm-up over 15 %, then a cosine
    anneal to nearly zero). With ``average_rate``: that cycle over the epochs before the last
    ``average_epochs``, annealing to ``average_rate`` times each group's peak, then held."""
    peaks = [group["lr"] for group in optimizer.param_groups]
    if not average_rate:
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=peaks, total_steps=max(1, epochs * steps_per_epoch), pct_start=0.15
        )
    # OneCycleLR ends at max_lr / (div_factor * final_div_factor); div_factor is 25.
    cycle = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=peaks,
        total_steps=max(1, (epochs - average_epochs) * steps_per_epoch),
        pct_start=0.15,
        final_div_factor=1.0 / (25.0 * average_rate),
    )
    # Its last value is reached after total_steps - 1 steps; a step more would leave the curve.
    return _HeldTail(cycle, cycle.total_steps - 1)


class _HeldTail:
    """A one-cycle schedule, then the rate it ended at, held (OneCycleLR refuses to step on)."""

    def __init__(self, cycle: Any, steps: int) -> None:
        self.cycle, self.steps_left = cycle, steps

    def step(self) -> None:
        if self.steps_left > 0:
            self.cycle.step()
            self.steps_left -= 1


def recompute_batch_norm(model: torch.nn.Module, run_batches: Callable[[], None]) -> int:
    """Refill the running statistics of the batch norms that training updates, as the plain
    mean over ``run_batches`` (forward passes over training data), for averaged weights.

    Batch norms that stay in evaluation mode while the model trains (a distilled student's)
    keep theirs. Returns how many layers were recomputed; the model is left in eval mode."""
    model.train()
    norms = [
        module
        for module in model.modules()
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm)
        and module.training
        and module.track_running_stats
    ]
    momenta = [module.momentum for module in norms]
    for module in norms:
        module.reset_running_stats()
        module.momentum = None  # a cumulative mean over the pass, not a moving one
    try:
        with torch.no_grad():
            run_batches()
    finally:
        for module, momentum in zip(norms, momenta, strict=True):
            module.momentum = momentum
        model.eval()
    return len(norms)


class EpochWeightAverage:
    """Running mean of a model's state at the end of each of a training's last ``count`` epochs."""

    def __init__(self, count: int, epochs: int, rate: float = 0.0) -> None:
        check_average_epochs(count, epochs, rate)
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


def statistics_pass(
    model: LGFN,
    items: Sequence[LoadedExample],
    config: LGFNConfig,
    device: torch.device,
    *,
    seed: int,
    batch_size: int,
    bf16: bool,
    **batch_options: Any,
) -> None:
    """One pass over the training examples, windows drawn and noised as in training
    (``batch_options``: :func:`training_batch`'s) by a generator of its own, so the training's
    stays untouched; for :func:`recompute_batch_norm`."""
    rng = np.random.default_rng([seed, 1])
    order = rng.permutation(len(items))
    for start in range(0, len(items), batch_size):
        chosen = [items[i] for i in order[start : start + batch_size]]
        batch = training_batch(chosen, config, rng, **batch_options).to(device)
        with training_autocast(device, bf16):
            forward_batch(model, batch)


def keep_last_epoch(
    model: torch.nn.Module, out: Path, metadata: dict[str, Any], average: EpochWeightAverage
) -> None:
    """Save ``model`` as it ended the last epoch to ``out/last-epoch``, then give it the
    averaged weights (the caller saves those to ``out``)."""
    from lgfn_model.runtime.checkpoint import save_checkpoint

    last = {**metadata, "average_epochs": None, "weights": "the last epoch's, not averaged"}
    save_checkpoint(model, Path(out) / LAST_EPOCH_DIR, metadata=last)  # type: ignore[arg-type]
    model.load_state_dict(average.averaged_state(model))
