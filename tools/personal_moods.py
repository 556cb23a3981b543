"""Simulated listeners: how much a mood head adapted to a few hand labels fits the rest of a
library better than the shipped model.

    python -m tools.personal_moods --data ../shared/data [--checkpoint default] [--seeds 10]
        [--first-seed 0] [--labels 20 50 100] [--libraries mirex 4q] [--penalty library|plain]
        [--json FILE]

Each development set with audio plays one listener's library, labelled by its own scheme:
the MIREX-like clips with clusters 1/5/3 as happy/angry/sad (clusters 2 and 4 name no mood
and are left out), and 4Q with its four quadrants. The shipped model predicts every clip
once, through the Predictor (audio from the feature cache, lyrics by its own encoder), and
keeps each clip's track embedding (cached in the cache folder, keyed on the model and the
clips). Then, for each number of labels and each seed, that many clips are drawn at random as
the listener's hand-set moods, the head is adapted to them
(:func:`lgfn_model.training.adaptation.adapt`, which also picks the penalty by
cross-validation on those labels alone), and both heads are scored on every other clip of
the library: mood accuracy, argmax over all four moods, as ``lgfn evaluate`` scores. The
penalty is measured in the whole library's coordinates, as ``beet emotion --learn`` does
(every track's embedding is there); ``--penalty plain`` measures it on the raw embedding.

The shipped models were trained on 80 % of these clips (the held-out split), so their head is
better on them than on a stranger's library: to see a listener the model has never heard, pass
a checkpoint trained without the library with ``--libraries mirex``
(``lgfn train --split cross-dataset`` learns from 4Q and NJU only) or ``--libraries 4q``
(``lgfn crossval --leave-out 4q`` leaves its model in ``OUT/leave-out-4q/model``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

LIBRARIES = ("mirex", "4q")


def library_examples(data: Path, name: str) -> list[Any]:
    from lgfn_model.training.datasets import load_examples

    return [
        e
        for e in load_examples(data)
        if e.dataset == name and e.audio is not None and e.mood is not None
    ]


def embeddings_of(
    examples: list[Any], checkpoint: str, cache_dir: Path | None, precision: str
) -> tuple[np.ndarray, np.ndarray, Any]:
    """(embeddings, shipped probabilities, the predictor) of the examples, from a cache file
    when this model has predicted these clips before."""
    from lgfn_model.evaluation.predicting import load_clips, measuring_predictor, predict_examples
    from lgfn_model.runtime.checkpoint_files import WEIGHTS_FILE, resolve_checkpoint
    from lgfn_model.training.cache import FeatureCache

    predictor = measuring_predictor(checkpoint, precision=precision)
    cache = FeatureCache(cache_dir, sample_rate=predictor.config.audio.sample_rate)
    # Keyed on the weights themselves: runs of different recipes share versions (every
    # `lgfn crossval --leave-out 4q` model is "lgfn-crossval-leave-out-4q-s0").
    weights = hashlib.sha256((resolve_checkpoint(checkpoint) / WEIGHTS_FILE).read_bytes())
    key = hashlib.sha256(
        json.dumps([weights.hexdigest(), precision, [e.id for e in examples]]).encode()
    ).hexdigest()[:16]
    stored = cache.root / f"embeddings-{key}.npz"
    if stored.is_file():
        with np.load(stored) as saved:
            return saved["embedding"], saved["probs"], predictor
    clips = load_clips(examples, cache)
    if len(clips) != len(examples):
        raise SystemExit("some clips could not be decoded: see the warnings above")
    outputs = predict_examples(predictor, clips, cache)
    np.savez(stored, embedding=outputs["embedding"], probs=outputs["probs"])
    return outputs["embedding"], outputs["probs"], predictor


def simulate(
    embeddings: np.ndarray,
    truth: np.ndarray,
    shipped: Any,
    label_counts: list[int],
    seeds: int,
    first_seed: int = 0,
    penalty: str = "library",
) -> dict[str, Any]:
    from lgfn_model.training.adaptation import adapt

    report: dict[str, Any] = {}
    for count in label_counts:
        if count >= len(truth):
            continue
        gains, adapted_acc, shipped_acc, estimates, changed = [], [], [], [], 0
        started = time.perf_counter()
        library = embeddings if penalty == "library" else None
        for seed in range(first_seed, first_seed + seeds):
            rng = np.random.default_rng(seed)
            chosen = rng.choice(len(truth), size=count, replace=False)
            rest = np.setdiff1d(np.arange(len(truth)), chosen)
            result = adapt(embeddings[chosen], truth[chosen], shipped, seed=seed, library=library)
            ours = float((result.head.predict(embeddings[rest]) == truth[rest]).mean())
            theirs = float((shipped.predict(embeddings[rest]) == truth[rest]).mean())
            adapted_acc.append(ours)
            shipped_acc.append(theirs)
            gains.append(ours - theirs)
            changed += result.changed
            if result.cv_accuracy_adapted is not None:
                estimates.append(result.cv_accuracy_adapted - result.cv_accuracy_shipped)
        report[str(count)] = {
            "labels": count,
            "rest": len(truth) - count,
            "seeds": seeds,
            "first_seed": first_seed,
            "penalty": penalty,
            "shipped_accuracy": float(np.mean(shipped_acc)),
            "adapted_accuracy": float(np.mean(adapted_acc)),
            "gain": _interval(gains),
            "worst_gain": float(min(gains)),
            "adapted_seeds": changed,
            "cv_estimate_of_gain": _interval(estimates) if estimates else None,
            "seconds_per_adaptation": (time.perf_counter() - started) / seeds,
        }
    return report


def _interval(values: list[float]) -> dict[str, float]:
    """Mean and a 95 % t-interval of the mean over seeds (the seeds' draws are independent;
    the interval is of the mean gain, the spread of single listeners is in ``sd``)."""
    mean = float(np.mean(values))
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    half = _t95(len(values) - 1) * sd / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return {"mean": mean, "sd": sd, "low": mean - half, "high": mean + half}


def _t95(dof: int) -> float:
    table = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}
    return table.get(dof, 2.26 if dof < 20 else 2.0)


def format_table(report: dict[str, Any]) -> str:
    lines = [
        "| library | hand labels | rest | shipped | adapted | gain (95 % CI of the mean) "
        "| worst seed | adapted in | own-labels CV estimate |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for rows in report["libraries"].values():
        for row in rows["by_labels"].values():
            gain, cv = row["gain"], row["cv_estimate_of_gain"]
            cv_text = "-" if cv is None else f"{cv['mean']:+.3f}"
            lines.append(
                f"| {rows['name']} ({rows['clips']} clips) | {row['labels']} | {row['rest']} "
                f"| {row['shipped_accuracy']:.3f} | {row['adapted_accuracy']:.3f} "
                f"| {gain['mean']:+.3f} [{gain['low']:+.3f}, {gain['high']:+.3f}] "
                f"| {row['worst_gain']:+.3f} | {row['adapted_seeds']}/{row['seeds']} | {cv_text} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.personal_moods", description=__doc__)
    parser.add_argument("--data", required=True, help="data root (mirex/, 4q/, ...)")
    parser.add_argument("--checkpoint", default="default", help="the shipped model to adapt")
    parser.add_argument("--labels", type=int, nargs="+", default=[20, 50, 100])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds run from this one")
    parser.add_argument(
        "--penalty",
        choices=("library", "plain"),
        default="library",
        help="measure the penalty in the library's coordinates (as --learn) or on raw embeddings",
    )
    parser.add_argument("--libraries", nargs="+", choices=LIBRARIES, default=list(LIBRARIES))
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--cache", help="feature cache folder (default ~/.cache/beets-lgfn)")
    parser.add_argument("--json", help="write the report here")
    args = parser.parse_args(argv)
    from lgfn_model.training.adaptation import Head

    names = {"mirex": "MIREX-like, clusters 1/5/3", "4q": "4Q"}
    report: dict[str, Any] = {"checkpoint": args.checkpoint, "libraries": {}}
    for library in args.libraries:
        examples = library_examples(Path(args.data), library)
        cache = Path(args.cache) if args.cache else None
        embeddings, probs, predictor = embeddings_of(
            examples, args.checkpoint, cache, args.precision
        )
        head = predictor.model.mood_head
        shipped = Head(head.weight.detach().double().numpy(), head.bias.detach().double().numpy())
        truth = np.array([e.mood for e in examples])
        agree = float((shipped.predict(embeddings) == probs.argmax(axis=1)).mean())
        if agree < 0.99:  # bf16 may flip a near tie; more means embeddings of another model
            raise SystemExit(
                f"{args.checkpoint}: its mood head gives the predictor's mood on only "
                f"{agree:.0%} of the {library} clips: the embeddings are not this model's"
            )
        report["model"] = predictor.version
        report["libraries"][library] = {
            "name": names[library],
            "clips": len(examples),
            "head_reproduces_the_predictor": agree,
            "by_labels": simulate(
                embeddings,
                truth,
                shipped,
                args.labels,
                args.seeds,
                first_seed=args.first_seed,
                penalty=args.penalty,
            ),
        }
    print(format_table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
