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

Given the embeddings of the whole library (labelled or not), the penalty is measured in the
library's own coordinates: the embeddings centred on the library's mean and whitened by its
covariance (shrunk halfway towards a multiple of the identity, which keeps it invertible with
few tracks). ``|W - W0|^2`` there is the mean squared change of the logits over the library's
tracks, so the head moves freely where the library hardly varies and little where moving
would re-tag most of it. On simulated listeners (60 draws, docs/adaptation.md) that gains
0.6-1.1 points over the plain penalty on 4Q with 20-100 labels and 0.2-0.9 on MIREX-like with
50-100, loses 1.1 on MIREX-like with 20 (inside the interval), and its worst 4Q listener with
20 labels loses 1.2 points where the plain penalty's lost 10.5.

Valence and arousal are not adapted: users set moods, not valence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from lgfn_model.runtime.personal_head import Head

__all__ = [
    "Adaptation",
    "Head",
    "LibraryCoordinates",
    "adapt",
    "choose_strength",
    "fit_head",
    "library_coordinates",
]

#: Penalty strengths tried, strongest last; ``inf`` is the shipped head unchanged.
STRENGTHS: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, float("inf"))
#: The same in the library's coordinates (each whitened direction has unit variance).
LIBRARY_STRENGTHS: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, float("inf"))
#: How far the library's covariance is shrunk towards a multiple of the identity.
SHRINKAGE = 0.5
MAX_FOLDS = 5


@dataclass(frozen=True)
class LibraryCoordinates:
    """Embeddings centred on the library's mean and whitened by its (shrunk) covariance."""

    mean: np.ndarray
    half: np.ndarray
    """The covariance's square root: a head's weight W here is ``W @ half``."""
    inverse_half: np.ndarray

    def of(self, embeddings: np.ndarray) -> np.ndarray:
        return (np.asarray(embeddings, dtype=np.float64) - self.mean) @ self.inverse_half

    def head_here(self, head: Head) -> Head:
        """``head`` on these coordinates: the same logits for every track."""
        return Head(head.weight @ self.half, head.bias + head.weight @ self.mean)

    def head_back(self, head: Head) -> Head:
        weight = head.weight @ self.inverse_half
        return Head(weight, head.bias - weight @ self.mean)


def library_coordinates(library: np.ndarray) -> LibraryCoordinates | None:
    """The coordinates of ``library`` (tracks x dimensions); None for fewer than two tracks."""
    library = np.asarray(library, dtype=np.float64)
    if library.ndim != 2 or len(library) < 2:
        return None
    mean = library.mean(axis=0)
    covariance = np.cov(library - mean, rowvar=False)
    dims = covariance.shape[0]
    scale = float(np.trace(covariance)) / dims
    if not np.isfinite(scale) or scale <= 0:
        return None  # every track the same: nothing to measure changes by
    covariance = (1 - SHRINKAGE) * covariance + SHRINKAGE * scale * np.eye(dims)
    values, vectors = np.linalg.eigh(covariance)
    half = (vectors * np.sqrt(values)) @ vectors.T
    inverse_half = (vectors / np.sqrt(values)) @ vectors.T
    return LibraryCoordinates(mean, half, inverse_half)


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
    coordinates: LibraryCoordinates | None = None,
) -> Head:
    """The head minimising mean cross-entropy on (embeddings, labels) plus the penalty of
    ``strength`` towards ``shipped`` (``inf``: ``shipped`` itself), measured in
    ``coordinates`` when given (see the module's docstring)."""
    if strength == float("inf") or len(labels) == 0:
        return shipped
    if coordinates is not None:
        fitted = fit_head(
            coordinates.of(embeddings), labels, coordinates.head_here(shipped), strength, iterations
        )
        return coordinates.head_back(fitted)
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
    coordinates: LibraryCoordinates | None = None,
) -> float:
    """The strength with the best cross-validated accuracy on the labels; ties go to the
    stronger penalty (closer to the shipped head). Too few labels: the shipped head."""
    folds = _folds(labels, seed)
    if folds is None:
        return float("inf")
    scores = [
        _held_out_correct(
            embeddings,
            labels,
            folds,
            lambda x, y, s=strength: fit_head(x, y, shipped, s, coordinates=coordinates),
        )
        for strength in strengths
    ]
    best = max(scores)
    return max(s for s, score in zip(strengths, scores, strict=True) if score == best)


def adapt(
    embeddings: np.ndarray,
    labels: np.ndarray,
    shipped: Head,
    strengths: Sequence[float] | None = None,
    seed: int = 0,
    library: np.ndarray | None = None,
) -> Adaptation:
    """Adapt ``shipped`` to (embeddings, labels): the strength chosen by cross-validation on
    all the labels, the head refitted on all of them; and an honest estimate of what that
    procedure gains, by cross-validation around the choice itself (nested). ``library``: the
    embeddings of every track of the library (the labelled ones among them), whose
    coordinates the penalty is measured in; without it, the plain penalty."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels, dtype=int)
    coordinates = None if library is None else library_coordinates(library)
    if strengths is None:
        strengths = STRENGTHS if coordinates is None else LIBRARY_STRENGTHS

    def procedure(x: np.ndarray, y: np.ndarray) -> Head:
        chosen = choose_strength(x, y, shipped, strengths, seed, coordinates)
        return fit_head(x, y, shipped, chosen, coordinates=coordinates)

    strength = choose_strength(embeddings, labels, shipped, strengths, seed, coordinates)
    head = fit_head(embeddings, labels, shipped, strength, coordinates=coordinates)
    adapted_cv = shipped_cv = None
    folds = _folds(labels, seed + 1)
    if folds is not None:
        adapted_cv = _held_out_correct(embeddings, labels, folds, procedure) / len(labels)
        shipped_cv = float((shipped.predict(embeddings) == labels).mean())
    return Adaptation(head, strength, len(labels), adapted_cv, shipped_cv)
