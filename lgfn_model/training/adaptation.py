"""Adapting the mood head to one listener's own labels, from stored track embeddings.

A track's mood is ``softmax(W e + b)`` where ``e`` is the mean over its windows of the vector
the mood head reads (the model's track embedding): the head is linear, so the mean of the
windows' logits is the head of the mean vector, and the shipped head applied to ``e``
reproduces the shipped prediction exactly. Adapting is then a small multinomial logistic
regression on the user's labelled tracks, started from the shipped head and held near it by
a penalty ``strength * (|W - W0|^2 + |b - b0|^2)``: with a few labels it can move little,
with many it follows the labels. The strength is chosen by cross-validation on the user's
own labels, and the shipped head itself is one of the candidates, so a handful of labels
that do not help leave the model as shipped.

Valence and arousal are not adapted: users set moods, not valence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from lgfn_model.runtime.personal_head import Head

__all__ = ["Adaptation", "Head", "adapt", "choose_strength", "fit_head"]

#: Penalty strengths tried, strongest last; ``inf`` is the shipped head unchanged.
STRENGTHS: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, float("inf"))
MAX_FOLDS = 5


@dataclass(frozen=True)
class Adaptation:
    """What :func:`adapt` found: the head to use, and how it fares on the user's labels."""

    head: Head
    strength: float
    """The penalty chosen; ``inf`` means the shipped head is kept."""
    labels: int
    cv_accuracy_adapted: float | None
    """Accuracy on held-out folds of the user's labels of the whole procedure (strength chosen
    inside each fold), or None with too few labels to cross-validate."""
    cv_accuracy_shipped: float | None
    """The shipped head on the same labels (the same for every fold split)."""

    @property
    def changed(self) -> bool:
        return self.strength != float("inf")


def fit_head(
    embeddings: np.ndarray,
    labels: np.ndarray,
    shipped: Head,
    strength: float,
    iterations: int = 60,
) -> Head:
    """The head minimising mean cross-entropy on (embeddings, labels) plus the penalty of
    ``strength`` towards ``shipped`` (``inf``: ``shipped`` itself)."""
    if strength == float("inf") or len(labels) == 0:
        return shipped
    import torch

    x = torch.as_tensor(np.asarray(embeddings), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    w0 = torch.as_tensor(shipped.weight, dtype=torch.float64)
    b0 = torch.as_tensor(shipped.bias, dtype=torch.float64)
    weight = w0.clone().requires_grad_(True)
    bias = b0.clone().requires_grad_(True)
    optimiser = torch.optim.LBFGS(
        [weight, bias],
        max_iter=iterations,
        line_search_fn="strong_wolfe",  # convex: converges in tens
    )

    def loss() -> torch.Tensor:
        optimiser.zero_grad()
        logits = x @ weight.T + bias
        value = torch.nn.functional.cross_entropy(logits, y)
        value = value + strength * ((weight - w0).pow(2).sum() + (bias - b0).pow(2).sum())
        value.backward()
        return value

    optimiser.step(loss)
    return Head(weight.detach().numpy().copy(), bias.detach().numpy().copy())


def _folds(labels: np.ndarray, seed: int) -> list[np.ndarray] | None:
    """Stratified fold indices (each label spread over the folds), or None when the rarest
    label has fewer than two examples."""
    counts = np.bincount(labels)
    counts = counts[counts > 0]
    k = min(MAX_FOLDS, int(counts.min()) if counts.size else 0)
    if k < 2:
        return None
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(labels), dtype=int)
    for label in np.unique(labels):
        where = np.flatnonzero(labels == label)
        rng.shuffle(where)
        fold_of[where] = np.arange(len(where)) % k
    return [np.flatnonzero(fold_of == f) for f in range(k)]


def _held_out_correct(
    embeddings: np.ndarray,
    labels: np.ndarray,
    folds: list[np.ndarray],
    fit: Callable[[np.ndarray, np.ndarray], Head],
) -> int:
    """How many labels a head fitted by ``fit(embeddings, labels)`` on the other folds gets
    right, summed over the folds."""
    correct = 0
    for test in folds:
        train = np.setdiff1d(np.arange(len(labels)), test)
        head = fit(embeddings[train], labels[train])
        correct += int((head.predict(embeddings[test]) == labels[test]).sum())
    return correct


def choose_strength(
    embeddings: np.ndarray,
    labels: np.ndarray,
    shipped: Head,
    strengths: Sequence[float] = STRENGTHS,
    seed: int = 0,
) -> float:
    """The strength with the best cross-validated accuracy on the labels; ties go to the
    stronger penalty (closer to the shipped head). Too few labels: the shipped head."""
    folds = _folds(labels, seed)
    if folds is None:
        return float("inf")
    scores = [
        _held_out_correct(
            embeddings, labels, folds, lambda x, y, s=strength: fit_head(x, y, shipped, s)
        )
        for strength in strengths
    ]
    best = max(scores)
    return max(s for s, score in zip(strengths, scores, strict=True) if score == best)


def adapt(
    embeddings: np.ndarray,
    labels: np.ndarray,
    shipped: Head,
    strengths: Sequence[float] = STRENGTHS,
    seed: int = 0,
) -> Adaptation:
    """Adapt ``shipped`` to (embeddings, labels): the strength chosen by cross-validation on
    all the labels, the head refitted on all of them; and an honest estimate of what that
    procedure gains, by cross-validation around the choice itself (nested)."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels, dtype=int)

    def procedure(x: np.ndarray, y: np.ndarray) -> Head:
        return fit_head(x, y, shipped, choose_strength(x, y, shipped, strengths, seed))

    strength = choose_strength(embeddings, labels, shipped, strengths, seed)
    head = fit_head(embeddings, labels, shipped, strength)
    adapted_cv = shipped_cv = None
    folds = _folds(labels, seed + 1)
    if folds is not None:
        adapted_cv = _held_out_correct(embeddings, labels, folds, procedure) / len(labels)
        shipped_cv = float((shipped.predict(embeddings) == labels).mean())
    return Adaptation(head, strength, len(labels), adapted_cv, shipped_cv)
