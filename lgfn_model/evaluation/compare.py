"""`lgfn compare`: two checkpoints on the same held-out clips, with paired statistics.

"Is the fast model as accurate as the default one?" is a question about the clips on which
they disagree: this prints, per label, both accuracies, how many clips only one of them gets
right, the exact McNemar p-value and a paired bootstrap 95 % interval of the difference
(see ``lgfn_model/evaluation/paired.py``). Audio clips only (4Q + MIREX-like), as the
summary of ``lgfn evaluate``, and like it through the Predictor
(``lgfn_model/evaluation/predicting.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lgfn_model.evaluation.paired import correct_per_example, paired_comparison, paired_row
from lgfn_model.evaluation.predicting import (
    Clip,
    load_clips,
    measuring_predictor,
    predict_examples,
    seen_test_note,
)
from lgfn_model.training.cache import FeatureCache
from lgfn_model.training.datasets import load_examples
from lgfn_model.training.splits import make_split

LABELS = ("mood", "valence", "arousal")


def run_comparison(
    data: Path,
    first: str,
    second: str,
    split_name: str = "heldout",
    cache_dir: Path | None = None,
    device: str = "auto",
    workers: int = 2,
    precision: str = "auto",
    samples: int = 10_000,
    threads: int | None = None,
) -> dict[str, Any]:
    """Both checkpoints through the Predictor on the same clips (as `lgfn evaluate`)."""
    split = make_split(split_name, load_examples(data))
    outcomes, versions = [], []
    loaded: dict[int, tuple[FeatureCache, list[Clip]]] = {}  # clips read once for both
    previous = None
    for checkpoint in (first, second):
        predictor = measuring_predictor(checkpoint, device, precision, threads)
        if previous is not None:  # the lyrics once, when both encode them alike
            predictor.share_text_encoder(previous)
        rate = predictor.config.audio.sample_rate
        if rate not in loaded:
            cache = FeatureCache(cache_dir, sample_rate=rate)
            clips = [c for c in load_clips(split.test, cache, workers) if c.has_audio]
            loaded[rate] = (cache, clips)
        cache, clips = loaded[rate]
        outputs = predict_examples(predictor, clips, cache)
        examples = [c.example for c in clips]
        outcomes.append(
            correct_per_example(
                examples, outputs["probs"], outputs["p_valence"], outputs["p_arousal"]
            )
        )
        versions.append(predictor.version)
        previous = predictor
    report: dict[str, Any] = {"a": versions[0], "b": versions[1], "split": split.name}
    notes = [seen_test_note(c, split.name) for c in (first, second)]
    report["notes"] = [n for n in notes if n is not None]
    for label in LABELS:
        report[label] = paired_comparison(outcomes[0][label], outcomes[1][label], samples)
    return report


def format_comparison(report: dict[str, Any]) -> str:
    lines = [
        f"A = {report['a']}, B = {report['b']}: {report['split']} split, audio clips",
        f"{'label':<8} {'n':>4} {'acc A':>6} {'acc B':>6} {'A-B':>7} {'only A':>6} "
        f"{'only B':>6} {'McNemar p':>9}  95 % interval of A-B",
    ]
    lines[1:1] = report.get("notes", [])
    for label in LABELS:
        r = report[label]
        if not r["n"]:
            lines.append(f"{label:<8} {0:>4}  (no clips with this label)")
            continue
        lines.append(paired_row(label, r, name_width=8, n_width=4))
    return "\n".join(lines)
