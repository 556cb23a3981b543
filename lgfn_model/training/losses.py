"""The training losses of `lgfn train`: labels, and a teacher's outputs when one is given.

Both pool each track's windows first (``pool_windows``, the mean of the window outputs, as the
predictor does), so a track counts once however long it is. They are computed in float32
whatever precision the forward pass ran in.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F  # noqa: N812

from lgfn_model.model.config import MOODS
from lgfn_model.model.network import pool_windows
from lgfn_model.training.dataset_weighting import weighted_mean
from lgfn_model.training.datasets import Example


def losses(out: Any, track_index: torch.Tensor, n_tracks: int, targets: Any) -> torch.Tensor:
    """Mood cross-entropy and sign losses for valence/arousal, each only where labelled."""
    logits = pool_windows(out.mood_logits, track_index, n_tracks).float()
    valence = pool_windows(out.valence, track_index, n_tracks).float()
    arousal = pool_windows(out.arousal, track_index, n_tracks).float()
    total = logits.new_zeros(())
    weights = targets.weight  # per example (--dataset-weight), or None: all 1
    labelled = targets.mood >= 0
    if labelled.any():
        if targets.mood_allowed is not None:
            # A source that never names a mood (MIREX-like: never relaxed) says nothing about
            # it: the softmax runs over the moods the example's dataset can name.
            logits = logits.masked_fill(~targets.mood_allowed, float("-inf"))
        each = F.cross_entropy(logits[labelled], targets.mood[labelled], reduction="none")
        total = total + weighted_mean(each, None if weights is None else weights[labelled])
    for value, target, weight in ((valence, targets.valence, 1.0), (arousal, targets.arousal, 0.5)):
        known = ~torch.isnan(target)
        if known.any():
            # Logistic loss on P(positive) = (v + 1) / 2: a sign label, not a regression target.
            p = ((value[known] + 1) / 2).clamp(1e-4, 1 - 1e-4)
            each = F.binary_cross_entropy(p, (target[known] + 1) / 2, reduction="none")
            total = total + weight * weighted_mean(
                each, None if weights is None else weights[known]
            )
    return total


def teacher_losses(
    out: Any,
    teacher: Any,
    track_index: torch.Tensor,
    n_tracks: int,
    temperature: float,
    example_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Match the teacher's track-level outputs: softened mood distribution (KL, scaled by T^2
    as in Hinton et al.) and its valence/arousal probabilities, weighted as the label losses;
    each track's share scaled by ``example_weight`` (``--dataset-weight``) when given."""
    student_logits = pool_windows(out.mood_logits, track_index, n_tracks).float() / temperature
    teacher_logits = pool_windows(teacher.mood_logits, track_index, n_tracks).float() / temperature
    divergence = F.kl_div(
        F.log_softmax(student_logits, -1),
        F.log_softmax(teacher_logits, -1),
        log_target=True,
        reduction="none",
    ).sum(-1)  # per track; their mean is "batchmean"
    total = weighted_mean(divergence, example_weight) * temperature**2
    for name, weight in (("valence", 1.0), ("arousal", 0.5)):
        mine = pool_windows(getattr(out, name), track_index, n_tracks).float()
        theirs = pool_windows(getattr(teacher, name), track_index, n_tracks).float()
        p = ((mine + 1) / 2).clamp(1e-4, 1 - 1e-4)
        each = F.binary_cross_entropy(p, ((theirs + 1) / 2).clamp(0, 1), reduction="none")
        total = total + weight * weighted_mean(each, example_weight)
    return total


def moods_named(examples: list[Example]) -> dict[str, tuple[int, ...]]:
    """{dataset: the mood indices its labelled examples use}, for each dataset that leaves
    out at least one of the four (``--mood-mask``); a dataset that names them all is not
    listed."""
    seen: dict[str, set[int]] = {}
    for example in examples:
        if example.mood is not None:
            seen.setdefault(example.dataset, set()).add(example.mood)
    return {name: tuple(sorted(m)) for name, m in sorted(seen.items()) if len(m) < len(MOODS)}


def describe_named(named: dict[str, tuple[int, ...]]) -> dict[str, list[str]] | str:
    """``moods_named``'s result by mood name, for the log and the checkpoint's metadata."""
    return {name: [MOODS[m] for m in moods] for name, moods in named.items()} or "all four"
