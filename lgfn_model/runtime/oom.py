"""What the predictor does when a batch runs out of GPU memory: retry it in halves, and run a
single window that still does not fit on the CPU, so one long or lyric-heavy batch never stops
the run. Other errors are not caught."""

from __future__ import annotations

from collections.abc import Callable

import torch

from lgfn_model.model.network import LGFN
from lgfn_model.runtime.device import resolve_precision
from lgfn_model.runtime.fold import fold_batch_norms
from lgfn_model.runtime.tracks import PredictorStats, Slices, split_batch

Forward = Callable[[Slices, bool], None]
"""Runs a batch through the model: on its own device, or (True) on the CPU copy."""


class OutOfMemoryFallback:
    """Split-and-retry for one predictor; warns once for splitting and once per track that
    falls back to the CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._warned_split = False

    def run(
        self,
        batch: Slices,
        forward: Forward,
        stats: PredictorStats,
        warn: Callable[[str], None],
    ) -> None:
        try:
            forward(batch, False)
            return
        except torch.OutOfMemoryError:
            pass  # leave the except block first, so the failed batch's tensors can be freed
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        windows = sum(b - a for _, a, b in batch)
        if windows > 1:
            stats.oom_retries += 1
            if not self._warned_split:
                self._warned_split = True
                warn(
                    f"GPU out of memory on a batch of {windows} windows; "
                    "retrying in smaller batches (a lower batch_size avoids this)"
                )
            for half in split_batch(batch, windows // 2):
                self.run(half, forward, stats, warn)
            return
        track = batch[0][0]
        if not track.on_cpu:
            track.on_cpu = True
            warn(f"{track.item.audio}: GPU out of memory on a single window; using the CPU")
        stats.cpu_windows += 1
        forward(batch, True)


def cpu_copy(model: LGFN, folded: bool, precision: str) -> LGFN:
    """A CPU copy of ``model``, built from host copies of the weights: copying the module
    itself would first allocate a second copy on the GPU that just ran out of memory."""
    state = {name: value.detach().cpu() for name, value in model.state_dict().items()}
    copy = LGFN(model.config).eval()
    if folded:  # the same modules, so that the folded weights fit
        fold_batch_norms(copy)
    copy.load_state_dict(state)
    # The precision asked for, as it resolves on the CPU (a GPU host may lack hardware bf16).
    copy.set_compute_dtype(resolve_precision(precision, torch.device("cpu")))
    return copy.eval()
