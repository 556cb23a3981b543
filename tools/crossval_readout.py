"""A cross-validated recipe with a lyrics read-out added to each fold model, measured again.

    python -m tools.crossval_readout --data ../shared/data --run runs/crossval-default \\
        --readout-weight nju=0.1 --readout-weight moodylyrics=0.1 --out runs/readout-default
    lgfn compare --crossval --data ../shared/data runs/readout-default runs/crossval-default

For each fold of an `lgfn crossval --out` folder, the fold's saved model gets a lyrics
read-out fitted on that fold's training examples (exactly as `lgfn readout` fits one on a
checkpoint: ``lgfn_model.training.lyrics_readout_fit``), is saved to ``OUT/fold-<i>/model``
and measures the fold's test clips again through the predictor users run, clean and at each
SNR the run was measured at, the clips in the run's order, so the noise drawn is the run's
own. ``OUT/fold-<i>.json`` is a fold result that `lgfn compare --crossval` pairs with the
run: examples without lyrics must come out as the run's (the read-out adds nothing there),
which the tool checks and reports.

Nothing is trained: a fold costs a fit (seconds) and one measuring pass per condition
(about as long as the run's own measuring).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lgfn_model.evaluation.crossval_compare import fold_results
from lgfn_model.training.datasets import Example
from tools.crossval_words import fold_checkpoint, tested_ids

log = logging.getLogger(__name__)


def noise_levels(document: Mapping[str, Any]) -> list[float]:
    """The SNRs a fold result was measured at, from its condition names (``snr_0db``)."""
    levels = []
    for key in document.get("predictions", {}):
        if key.startswith("snr_") and key.endswith("db"):
            levels.append(float(key.removeprefix("snr_").removesuffix("db")))
    return levels


def unchanged_without_lyrics(
    base: Mapping[str, Any], new: Mapping[str, Any], by_id: Mapping[str, Example]
) -> float:
    """The largest difference in any output between the run and the new model over the
    examples without lyrics (0 when the paths agree, as they must)."""
    outputs = zip(base["probs"], base["p_valence"], base["p_arousal"], strict=True)
    old_rows = dict(zip(base["id"], outputs, strict=True))
    worst = 0.0
    for example_id, probs, valence, arousal in zip(
        new["id"], new["probs"], new["p_valence"], new["p_arousal"], strict=True
    ):
        if by_id[example_id].lyrics is not None or example_id not in old_rows:
            continue
        old_probs, old_valence, old_arousal = old_rows[example_id]
        worst = max(
            worst,
            float(np.max(np.abs(np.subtract(probs, old_probs)))),
            abs(valence - old_valence),
            abs(arousal - old_arousal),
        )
    return worst


def readout_run(
    run: Path,
    data: Path,
    examples: Sequence[Example],
    out: Path,
    dataset_weights: Mapping[str, float],
    strength: float,
    fusion: Sequence[float],
    precision: str = "auto",
    threads: int | None = None,
    cache_dir: Path | None = None,
) -> list[str]:
    """Write ``OUT/fold-<i>.json`` and ``OUT/fold-<i>/model`` for every fold of ``run``; a
    fold already written is kept (the tool resumes). Returns the folds written now."""
    from lgfn_model.evaluation.crossval_measure import measure
    from lgfn_model.evaluation.predicting import load_clips, measuring_predictor
    from lgfn_model.training.cache import FeatureCache
    from lgfn_model.training.crossval_fold import noise_key, write_json
    from lgfn_model.training.readout_checkpoint import readout_onto_checkpoint

    by_id = {e.id: e for e in examples}
    written = []
    for name, document in fold_results(run).items():
        target = out / f"{name}.json"
        if target.is_file():
            log.info("%s: found %s, kept", name, target)
            continue
        where = str(run / f"{name}.json")
        ids = tested_ids(document, where)
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            raise ValueError(f"{where}: {unknown[0]} is not an example of --data")
        model_dir = out / name / "model"
        _, metadata = readout_onto_checkpoint(
            fold_checkpoint(run, name, document),
            data,
            model_dir,
            FeatureCache(cache_dir),
            dataset_weights,
            strength,
            fusion,
        )
        predictor = measuring_predictor(model_dir, precision=precision, threads=threads)
        cache = FeatureCache(cache_dir, sample_rate=predictor.config.audio.sample_rate)
        clips = load_clips([by_id[i] for i in ids], cache)
        result: dict[str, Any] = {
            "fold": document.get("fold"),
            "split": document.get("split"),
            "base": str(run),
            "checkpoint": str(model_dir),
            "lyrics_readout": metadata["lyrics_readout"],
            "precision": str(predictor.dtype).removeprefix("torch."),
            "text_precision": predictor.text_precision,
            "test_examples": len(clips),
        }
        predictions: dict[str, Any] = {}
        result["clean"], predictions["clean"] = measure(predictor, clips, cache, None)
        audio_clips = [c for c in clips if c.has_audio]
        for snr in noise_levels(document):
            key = noise_key(snr)
            result[key], predictions[key] = measure(predictor, audio_clips, cache, snr)
        result["predictions"] = predictions
        drift = max(
            unchanged_without_lyrics(document["predictions"][key], predictions[key], by_id)
            for key in predictions
            if key in document["predictions"]
        )
        result["without_lyrics_max_difference"] = drift
        log.info("%s: measured; examples without lyrics differ from the run by %.2g", name, drift)
        write_json(target, result)
        written.append(name)
    return written


def main(argv: list[str] | None = None) -> int:
    from lgfn_model.cli.arguments import add_readout_weight
    from lgfn_model.training.lyrics_readout_fit import FUSION, STRENGTH

    parser = argparse.ArgumentParser(
        prog="python -m tools.crossval_readout",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--run", type=Path, required=True, help="an `lgfn crossval --out` folder")
    parser.add_argument("--out", type=Path, required=True)
    add_readout_weight(parser)
    parser.add_argument("--strength", type=float, default=STRENGTH)
    parser.add_argument("--fusion", type=float, nargs=3, default=list(FUSION))
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--cache", type=Path, default=None, help="feature cache folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="crossval_readout: %(message)s")
    from lgfn_model.training.crossval import development_examples

    try:
        written = readout_run(
            args.run,
            args.data,
            development_examples(args.data),
            args.out,
            dict(args.readout_weight),
            args.strength,
            args.fusion,
            args.precision,
            args.threads,
            args.cache,
        )
    except (ValueError, FileNotFoundError) as error:
        print(f"crossval_readout: {error}", file=sys.stderr)
        return 2
    print(json.dumps({"written": written, "out": str(args.out)}))
    print(f"pair it: lgfn compare --crossval --data {args.data} {args.out} {args.run}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
