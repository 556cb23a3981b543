"""Other ways to adapt the mood head to a listener's labels, against the one ``adapt`` uses.

    python -m tools.adaptation_rules --data ../shared/data --library mirex \\
        --checkpoint CHECKPOINT [--labels 20 50 100] [--seeds 10] [--rules built one-se ...]

The same simulated listeners as ``tools.personal_moods`` (random hand labels drawn from a
dataset that plays the library, scored on the rest of it, cached embeddings), with the head
fitted by each rule below; prints the mean gain over the unadapted head and the worst seed.
docs/adaptation.md ("Choices that lost") has the figures.

- ``built``: ``adapt`` with the plain penalty (on the raw embedding, as ``adapt`` does without
  ``library``): the strongest penalty among those with the best cross-validated score on the
  labels (``inf``, the shipped head, among them);
- ``library``: ``adapt`` as ``--learn`` runs it: the same choice, the penalty measured in the
  whole library's whitened coordinates (``adaptation.library_coordinates``);
- ``three-splits``: the same with each penalty's score summed over three fold splits of the
  labels (a steadier choice, at three times the cost);
- ``one-se``: the strongest penalty within one standard error of the best score;
- ``margin``: adapt only when the best score beats the shipped head's by 2 labels and 1 SE;
- ``grid-plus``: ``built`` with penalties 3 and 10 added;
- ``floor``: ``built`` with penalties below 1/labels left out;
- ``transform``: a 4x4 transform of the shipped logits (and a bias), held near the identity;
- ``transform-or-full``: that or the full head, whichever cross-validates better;
- ``transform-then-full``: the transform, then the full head held near it;
- ``em``: no labels: the library's mood proportions by EM (Saerens et al. 2002) on the shipped
  probabilities, the training mix taken as balanced, and the bias shifted by their log ratio;
- ``em-then-built``: that, then ``built`` towards it;
- ``va-prior``: ``built`` towards the shipped head plus ``weight`` times the quadrant head the
  valence and arousal heads imply (mood ``m`` gets ``sign_v(m) u_v + sign_a(m) u_a``, ``u`` the
  affect head's value before tanh: still a linear head on the embedding), the weight (0, 0.5,
  1, 2, 4) and the penalty chosen together by cross-validation on the labels, ties to the
  smaller weight and the stronger penalty;
- ``subspace``: ``built`` with the change to the head confined to the top 4, 8 or 16 principal
  directions of the whole library's embeddings (unlabelled tracks included: the stored
  embeddings of every track are there when ``--learn`` runs), the dimension and the penalty
  chosen together by cross-validation on the labels;
- ``va-only``: no labels: the quadrant head of valence and arousal alone (weight 1, the mood
  head left out), to see what the affect heads know of the library.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from lgfn_model.runtime.personal_head import Head
from lgfn_model.training import adaptation
from lgfn_model.training.adaptation import STRENGTHS, fit_head

INF = float("inf")
Fit = Callable[[np.ndarray, np.ndarray, Head, float], Head]


def fit_transform(x: np.ndarray, y: np.ndarray, shipped: Head, strength: float) -> Head:
    """logits' = A logits + c, held near A = I, c = 0; still a linear head on the embedding."""
    if strength == INF or len(y) == 0:
        return shipped
    import torch

    w0 = torch.as_tensor(shipped.weight, dtype=torch.float64)
    b0 = torch.as_tensor(shipped.bias, dtype=torch.float64)
    logits = torch.as_tensor(np.asarray(x, dtype=np.float64)) @ w0.T + b0
    labels = torch.as_tensor(np.asarray(y), dtype=torch.long)
    eye = torch.eye(w0.shape[0], dtype=torch.float64)
    a = eye.clone().requires_grad_(True)
    c = torch.zeros(w0.shape[0], dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([a, c], max_iter=60, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimiser.zero_grad()
        value = torch.nn.functional.cross_entropy(logits @ a.T + c, labels)
        value = value + strength * ((a - eye).pow(2).sum() + c.pow(2).sum())
        value.backward()
        return value

    optimiser.step(loss)
    a, c = a.detach(), c.detach()
    return Head((a @ w0).numpy(), (a @ b0 + c).numpy())


def em_head(shipped: Head, library: np.ndarray, iterations: int = 100) -> Head:
    probabilities = shipped.probabilities(library)
    trained = np.full(probabilities.shape[1], 1.0 / probabilities.shape[1])
    prior = probabilities.mean(axis=0)
    for _ in range(iterations):
        shifted = probabilities * (prior / trained)
        shifted /= shifted.sum(axis=1, keepdims=True)
        prior = shifted.mean(axis=0)
    return Head(shipped.weight, shipped.bias + np.log(np.maximum(prior, 1e-6) / trained))


def _best(
    candidates: list[tuple[Fit, float]], x: np.ndarray, y: np.ndarray, base: Head, seed: int
) -> tuple[list[int] | None, int]:
    """Each candidate's cross-validated correct count, and the number of labels."""
    folds = adaptation._folds(y, seed)
    if folds is None:
        return None, len(y)
    scores = [
        adaptation._held_out_correct(x, y, folds, lambda a, b, f=f, s=s: f(a, b, base, s))
        for f, s in candidates
    ]
    return scores, len(y)


def _strongest(strengths: tuple[float, ...], scores: list[int], floor: float) -> float:
    return max(s for s, v in zip(strengths, scores, strict=True) if v >= floor)


def choose_penalty(rule: str, x: np.ndarray, y: np.ndarray, base: Head, seed: int) -> Head:
    if rule == "three-splits":
        totals = [0] * len(STRENGTHS)
        for split in range(3):
            scores, _ = _best([(fit_head, s) for s in STRENGTHS], x, y, base, seed + 1000 * split)
            if scores is None:
                return base
            totals = [a + b for a, b in zip(totals, scores, strict=True)]
        return fit_head(x, y, base, _strongest(STRENGTHS, totals, max(totals)))
    strengths = (*STRENGTHS[:-1], 3.0, 10.0, INF) if rule == "grid-plus" else STRENGTHS
    if rule == "floor":
        strengths = tuple(s for s in STRENGTHS if s >= 1.0 / len(y))
    scores, n = _best([(fit_head, s) for s in strengths], x, y, base, seed)
    if scores is None:
        return base
    best = max(scores)
    error = math.sqrt(max(best / n * (1 - best / n), 1e-9) / n) * n
    if rule == "one-se":
        return fit_head(x, y, base, _strongest(strengths, scores, best - error))
    if rule == "margin" and best - scores[-1] < max(2.0, error):
        return base
    return fit_head(x, y, base, _strongest(strengths, scores, best))


def choose_family(rule: str, x: np.ndarray, y: np.ndarray, shipped: Head, seed: int) -> Head:
    finite = STRENGTHS[:-1]
    if rule == "transform":
        candidates: list[tuple[Fit, float]] = [(fit_transform, s) for s in STRENGTHS]
    elif rule == "transform-or-full":
        candidates = [(fit_transform, s) for s in finite] + [(fit_head, s) for s in STRENGTHS]
    else:  # transform-then-full: the transform's penalty fixed, refitted inside every fold
        folds = adaptation._folds(y, seed)
        if folds is None:
            return shipped
        first = _penalty_of(choose_family("transform", x, y, shipped, seed), x, y, shipped)

        def both(a: np.ndarray, b: np.ndarray, _base: Head, strength: float) -> Head:
            return fit_head(a, b, fit_transform(a, b, shipped, first), strength)

        scores, _ = _best([(both, s) for s in STRENGTHS], x, y, shipped, seed)
        assert scores is not None
        return both(x, y, shipped, _strongest(STRENGTHS, scores, max(scores)))
    scores, _ = _best(candidates, x, y, shipped, seed)
    if scores is None:
        return shipped
    best = max(scores)
    # Ties: the shipped head, then the transform (fewer parameters), then the stronger penalty.
    order = sorted(
        range(len(candidates)),
        key=lambda i: (
            scores[i],
            candidates[i][1] == INF,
            candidates[i][0] is fit_transform,
            candidates[i][1],
        ),
    )
    chosen, strength = candidates[order[-1]]
    assert scores[order[-1]] == best
    return chosen(x, y, shipped, strength)


def _penalty_of(head: Head, x: np.ndarray, y: np.ndarray, shipped: Head) -> float:
    """Which transform penalty gave ``head`` (refitting is cheap: 4 candidates)."""
    for strength in STRENGTHS:
        if np.array_equal(fit_transform(x, y, shipped, strength).weight, head.weight):
            return strength
    return INF


#: Each mood's (sign of valence, sign of arousal): Russell's quadrants, in MOODS order.
QUADRANT_SIGNS = {"happy": (1, 1), "angry": (-1, 1), "sad": (-1, -1), "relaxed": (1, -1)}
VA_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0)


def quadrant_head(affect: Head, labels: tuple[str, ...]) -> Head:
    """The linear head whose logit for a mood is sign_v * u_v + sign_a * u_a."""
    signs = np.array([QUADRANT_SIGNS[label] for label in labels], dtype=np.float64)
    return Head(signs @ affect.weight, signs @ affect.bias)


def blend(shipped: Head, quadrant: Head, weight: float) -> Head:
    return Head(shipped.weight + weight * quadrant.weight, shipped.bias + weight * quadrant.bias)


Refit = Callable[[np.ndarray, np.ndarray], Head]


def first_best(x: np.ndarray, y: np.ndarray, seed: int, candidates: list[Refit]) -> Refit | None:
    """The candidate fit with the best cross-validated score on (x, y), the earliest on ties
    (order them safest first); None with too few labels to cross-validate."""
    folds = adaptation._folds(y, seed)
    if folds is None:
        return None
    scores = [adaptation._held_out_correct(x, y, folds, fit) for fit in candidates]
    return candidates[scores.index(max(scores))]


def choose_va_prior(x: np.ndarray, y: np.ndarray, shipped: Head, quadrant: Head, seed: int) -> Head:
    bases = [blend(shipped, quadrant, weight) for weight in VA_WEIGHTS]
    candidates: list[Refit] = [
        partial(fit_head, shipped=base, strength=strength)
        for base in bases
        for strength in reversed(STRENGTHS)  # strongest first: ties keep it
    ]
    chosen = first_best(x, y, seed, candidates)
    return shipped if chosen is None else chosen(x, y)


SUBSPACE_DIMS = (4, 8, 16)


def library_directions(library: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """The library's mean embedding and its top ``dims`` principal directions (dims, D)."""
    mean = library.mean(axis=0)
    _, _, vt = np.linalg.svd(library - mean, full_matrices=False)
    return mean, vt[:dims]


def fit_subspace(
    x: np.ndarray,
    y: np.ndarray,
    shipped: Head,
    strength: float,
    basis: tuple[np.ndarray, np.ndarray],
) -> Head:
    """``shipped`` plus a change along the basis' directions only, held near zero."""
    if strength == INF or len(y) == 0:
        return shipped
    import torch

    mean, directions = basis
    z = torch.as_tensor((np.asarray(x, dtype=np.float64) - mean) @ directions.T)
    base = torch.as_tensor(np.asarray(x, dtype=np.float64) @ shipped.weight.T + shipped.bias)
    labels = torch.as_tensor(np.asarray(y), dtype=torch.long)
    delta = torch.zeros((shipped.weight.shape[0], directions.shape[0]), dtype=torch.float64)
    delta.requires_grad_(True)
    shift = torch.zeros(shipped.weight.shape[0], dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([delta, shift], max_iter=60, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimiser.zero_grad()
        value = torch.nn.functional.cross_entropy(base + z @ delta.T + shift, labels)
        value = value + strength * (delta.pow(2).sum() + shift.pow(2).sum())
        value.backward()
        return value

    optimiser.step(loss)
    d, c = delta.detach().numpy(), shift.detach().numpy()
    return Head(shipped.weight + d @ directions, shipped.bias + c - d @ directions @ mean)


def choose_subspace(
    x: np.ndarray, y: np.ndarray, shipped: Head, library: np.ndarray, seed: int
) -> Head:
    bases = [library_directions(library, dims) for dims in SUBSPACE_DIMS]
    candidates: list[Refit] = [
        partial(fit_subspace, shipped=shipped, strength=strength, basis=basis)
        for basis in bases
        for strength in reversed(STRENGTHS)  # strongest first: ties keep it
    ]
    chosen = first_best(x, y, seed, candidates)
    return shipped if chosen is None else chosen(x, y)


def adapted(
    rule: str,
    x: np.ndarray,
    y: np.ndarray,
    shipped: Head,
    library: np.ndarray,
    seed: int,
    quadrant: Head | None = None,
) -> Head:
    if rule == "library":
        coordinates = adaptation.library_coordinates(library)
        strength = adaptation.choose_strength(
            x, y, shipped, adaptation.LIBRARY_STRENGTHS, seed, coordinates
        )
        return fit_head(x, y, shipped, strength, coordinates=coordinates)
    if rule == "subspace":
        return choose_subspace(x, y, shipped, library, seed)
    if rule in ("va-prior", "va-only"):
        assert quadrant is not None
        if rule == "va-only":
            return quadrant
        return choose_va_prior(x, y, shipped, quadrant, seed)
    if rule == "em":
        return em_head(shipped, library)
    if rule == "em-then-built":
        return choose_penalty("built", x, y, em_head(shipped, library), seed)
    if rule.startswith("transform"):
        return choose_family(rule, x, y, shipped, seed)
    return choose_penalty(rule, x, y, shipped, seed)


RULES = (
    "built",
    "library",
    "one-se",
    "margin",
    "grid-plus",
    "floor",
    "transform",
    "transform-or-full",
    "transform-then-full",
    "em",
    "em-then-built",
    "va-prior",
    "va-only",
    "subspace",
    "three-splits",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.adaptation_rules", description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--library", choices=("mirex", "4q"), required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--labels", type=int, nargs="+", default=[20, 50, 100])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--rules", nargs="+", choices=RULES, default=list(RULES))
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args(argv)
    from tools.personal_moods import embeddings_of, library_examples

    examples = library_examples(Path(args.data), args.library)
    embeddings, _, predictor = embeddings_of(examples, args.checkpoint, None, args.precision)
    weights = predictor.model.mood_head
    shipped = Head(weights.weight.detach().double().numpy(), weights.bias.detach().double().numpy())
    affect = predictor.model.affect_head
    quadrant = quadrant_head(
        Head(affect.weight.detach().double().numpy(), affect.bias.detach().double().numpy()),
        tuple(predictor.config.labels),
    )
    truth = np.array([e.mood for e in examples])
    print("| rule | labels | mean gain | worst seed |")
    print("|---|---|---|---|")
    for rule in args.rules:
        for count in args.labels:
            gains = _gains(rule, count, args.seeds, embeddings, truth, shipped, quadrant)
            print(f"| {rule} | {count} | {np.mean(gains):+.3f} | {min(gains):+.3f} |", flush=True)
    return 0


def _gains(
    rule: str,
    count: int,
    seeds: int,
    embeddings: np.ndarray,
    truth: np.ndarray,
    shipped: Any,
    quadrant: Head,
) -> list[float]:
    gains = []
    for seed in range(seeds):
        chosen = np.random.default_rng(seed).choice(len(truth), size=count, replace=False)
        rest = np.setdiff1d(np.arange(len(truth)), chosen)
        head = adapted(rule, embeddings[chosen], truth[chosen], shipped, embeddings, seed, quadrant)
        ours = (head.predict(embeddings[rest]) == truth[rest]).mean()
        theirs = (shipped.predict(embeddings[rest]) == truth[rest]).mean()
        gains.append(float(ours - theirs))
    return gains


if __name__ == "__main__":
    sys.exit(main())
