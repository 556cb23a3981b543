"""What do the words add? A cross-validated recipe's fold models heard with and without lyrics.

    python -m tools.crossval_words --data ../shared/data --run runs/crossval-default \\
        --out runs/words-default
    lgfn compare --crossval --by-label --data ../shared/data \\
        runs/words-default/with-words runs/words-default/without-words

For each fold of an `lgfn crossval --out` folder, the fold's saved model (``fold-<i>/model``)
measures the fold's test clips that have both audio and lyrics twice, through the predictor
users run (:func:`lgfn_model.evaluation.predicting.predict_examples`): once as they are, once
with the lyrics withheld (the model then hears the audio alone, its audio gate at 1). The two
passes run in one process with one precision, so the only difference between them is the
words. Each pass is written as a crossval-like folder (``OUT/with-words``,
``OUT/without-words``, a ``fold-<i>.json`` each, clean predictions plus the mean audio gate of
each clip) that ``lgfn compare --crossval`` pairs example by example.

The tool prints the same paired comparison per dataset and source label (MIREX-like clusters)
and the mean audio gate (the share of the fused frames the audio holds; 1 - gate is the words'
share) per group: whether a recipe's words move its answers, and where.

Nothing is trained; a fold costs two measuring passes over its clips with lyrics (MIREX-like:
about 90 clips a fold).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from lgfn_model.evaluation.crossval_compare import (
    compare_crossval,
    example_groups,
    fold_results,
    format_crossval_comparison,
    group_name,
)
from lgfn_model.training.datasets import Example

log = logging.getLogger(__name__)

PASSES = ("with-words", "without-words")


def fold_checkpoint(run: Path, name: str, document: dict[str, Any]) -> Path:
    """Where fold ``name``'s model is: ``RUN/<name>/model`` (the folder may have moved since
    the run wrote its absolute ``checkpoint``), else that recorded path."""
    beside = run / name / "model"
    if (beside / "config.json").is_file():
        return beside
    recorded = Path(document.get("checkpoint", ""))
    if (recorded / "config.json").is_file():
        return recorded
    raise FileNotFoundError(f"{run / name}: no saved fold model (model/config.json) to measure")


def tested_ids(document: dict[str, Any], where: str) -> list[str]:
    clean = document.get("predictions", {}).get("clean")
    if clean is None:
        raise ValueError(f"{where}: no clean predictions, so which examples it tested is unknown")
    return list(clean["id"])


def measure_words(
    run: Path,
    examples: Sequence[Example],
    out: Path,
    precision: str = "auto",
    threads: int | None = None,
    cache_dir: Path | None = None,
    device: str = "auto",
) -> list[str]:
    """Write ``OUT/with-words`` and ``OUT/without-words`` for every fold of ``run``; returns
    the folds measured. Folds with no tested clip that has audio and lyrics are skipped."""
    from lgfn_model.evaluation.crossval_measure import prediction_record
    from lgfn_model.evaluation.predicting import load_clips, measuring_predictor, predict_examples
    from lgfn_model.training.cache import FeatureCache

    by_id = {e.id: e for e in examples}
    measured: list[str] = []
    for name, document in fold_results(run).items():
        where = str(run / f"{name}.json")
        ids = tested_ids(document, where)
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            raise ValueError(f"{where}: {unknown[0]} is not an example of --data")
        chosen = [by_id[i] for i in ids if by_id[i].has_audio and by_id[i].lyrics is not None]
        checkpoint = fold_checkpoint(run, name, document)
        predictor = measuring_predictor(
            checkpoint, device=device, precision=precision, threads=threads
        )
        cache = FeatureCache(cache_dir, sample_rate=predictor.config.audio.sample_rate)
        clips = [c for c in load_clips(chosen, cache) if c.has_audio and c.has_lyrics]
        if not clips:
            log.info("%s: no tested clip with audio and lyrics; skipped", name)
            continue
        log.info("%s: %d clips with audio and lyrics, measured with and without", name, len(clips))
        passes = {
            "with-words": predict_examples(predictor, clips, cache),
            "without-words": predict_examples(
                predictor, [replace(c, lyrics=None) for c in clips], cache
            ),
        }
        clip_ids = [c.example.id for c in clips]
        for label, outputs in passes.items():
            target = out / label / f"{name}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            document_out = {
                "fold": name,
                "base": str(run),
                "pass": label,
                "checkpoint": str(checkpoint),
                "precision": str(predictor.dtype).removeprefix("torch."),
                "predictions": {"clean": prediction_record(clip_ids, outputs)},
            }
            target.write_text(json.dumps(document_out) + "\n")
        measured.append(name)
    if not measured:
        raise ValueError(f"{run}: no fold tested a clip with both audio and lyrics")
    return measured


def gate_by_group(out: Path, examples: Sequence[Example], by_label: bool) -> dict[str, float]:
    """Mean audio gate with the words, per dataset (or dataset and source label)."""
    by_id = {e.id: e for e in examples}
    gates: dict[str, float] = {}
    for document in fold_results(out / "with-words").values():
        clean = document["predictions"]["clean"]
        gates.update(zip(clean["id"], clean["gate"], strict=True))
    groups = example_groups(list(gates), by_id, by_label)
    return {group: float(np.mean([gates[i] for i in ids])) for group, ids in groups.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.crossval_words", description=__doc__)
    parser.add_argument("--data", required=True, type=Path, help="the data the run was made on")
    parser.add_argument("--run", required=True, type=Path, help="an lgfn crossval --out folder")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--precision", default="auto", help="as lgfn crossval's (auto)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda (auto)")
    parser.add_argument("--cache", type=Path, default=None, help="feature cache folder")
    parser.add_argument("--samples", type=int, default=10_000, help="bootstrap resamples")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from lgfn_model.model.config import MOODS
    from lgfn_model.training.crossval import development_examples

    try:
        examples = development_examples(args.data)
        measure_words(
            args.run, examples, args.out, args.precision, args.threads, args.cache, args.device
        )
        reports = [
            compare_crossval(
                args.out / PASSES[0],
                args.out / PASSES[1],
                examples,
                MOODS,
                samples=args.samples,
                by_label=by_label,
            )
            for by_label in (False, True)
        ]
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print("A: the fold models with the words; B: the same models, the words withheld")
    for report in reports:
        print(format_crossval_comparison(report))
    print("mean audio gate with the words (1 = the audio alone decides):")
    for by_label in (False, True):
        for group, gate in gate_by_group(args.out, examples, by_label).items():
            print(f"  {group_name(group):<28} {gate:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
