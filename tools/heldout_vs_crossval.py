"""A checkpoint trained on the held-out split against a cross-validated recipe, on the clips
neither ever trained on: what more training data is worth.

    python -m tools.heldout_vs_crossval --data ../shared/data --run runs/crossval-default \\
        --checkpoint default --out runs/heldout-vs-default --snr 0

A checkpoint trained by `lgfn train` on the held-out split's training part never saw that
split's test clips; each of those clips also lies in exactly one test fold of an `lgfn
crossval` run, whose fold model never saw it either. So the two can be paired example by
example on the held-out test clips, though they were trained on different amounts of data
(the held-out training part, NJU's own train half, no MoodyLyrics4Q: 1,557 examples; a fold
of 5: 4/5 of all development data, ~3,170). For one recipe on both sides this measures what
the extra data is worth on clips never heard, which is what training the shipped model on
all development data (`lgfn train --split all`) relies on.

The checkpoint is measured through the predictor users run, with ``--precision`` (give the
run's: ``auto`` on the machine that made it). The result is written as two crossval-like
folders, ``OUT/crossval`` (the run's own predictions of those clips) and ``OUT/checkpoint``,
one ``fold-<i>.json`` each, which ``lgfn compare --crossval`` pairs; the tool prints that
comparison per dataset (and per source label with ``--by-label``). With ``--snr``, the noisy
condition too; the noise is drawn afresh (seeded) for the checkpoint, so at an SNR the two
sides heard other noise of the same level.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lgfn_model.evaluation.crossval_compare import (
    compare_crossval,
    fold_results,
    format_crossval_comparison,
)
from lgfn_model.training.datasets import Example

log = logging.getLogger(__name__)


def heldout_test_ids(data: Path) -> set[str]:
    """The ids of the held-out split's test part, as `lgfn train` splits ``data``."""
    from lgfn_model.training.datasets import load_examples
    from lgfn_model.training.splits import heldout_split

    return {e.id for e in heldout_split(load_examples(data)).test}


def check_trained_on_heldout(checkpoint: str) -> str:
    """The checkpoint's version; an error unless it was trained on the held-out split."""
    from lgfn_model.runtime.checkpoint import checkpoint_metadata
    from lgfn_model.runtime.checkpoint_files import checkpoint_version, resolve_checkpoint

    directory = resolve_checkpoint(checkpoint)
    trained_on = checkpoint_metadata(directory).get("trained_on")
    if trained_on != "heldout":
        raise ValueError(
            f"{checkpoint}: trained on {trained_on or 'an unrecorded split'}, not the held-out "
            "split's training part, so the held-out test clips are not unseen by it"
        )
    return checkpoint_version(directory)


def restricted(part: dict[str, Any], keep: set[str]) -> dict[str, Any]:
    """A stored prediction block (``predictions.<condition>``) cut to the ids in ``keep``."""
    rows = [k for k, example_id in enumerate(part["id"]) if example_id in keep]
    return {key: [values[k] for k in rows] for key, values in part.items()}


def pair_with_checkpoint(
    run: Path,
    checkpoint: str,
    examples: Sequence[Example],
    heldout: set[str],
    out: Path,
    snrs: Sequence[float] = (),
    precision: str = "auto",
    threads: int | None = None,
    cache_dir: Path | None = None,
    device: str = "auto",
) -> list[str]:
    """Write ``OUT/crossval`` and ``OUT/checkpoint`` for every fold of ``run`` that tested a
    held-out clip; returns those folds."""
    from lgfn_model.evaluation.crossval_measure import prediction_record
    from lgfn_model.evaluation.predicting import load_clips, measuring_predictor, predict_examples
    from lgfn_model.training.cache import FeatureCache
    from lgfn_model.training.crossval_fold import noise_key

    version = check_trained_on_heldout(checkpoint)
    by_id = {e.id: e for e in examples}
    predictor = measuring_predictor(checkpoint, device=device, precision=precision, threads=threads)
    cache = FeatureCache(cache_dir, sample_rate=predictor.config.audio.sample_rate)
    conditions = {"clean": None, **{noise_key(s): s for s in snrs}}
    measured: list[str] = []
    for name, document in fold_results(run).items():
        where = run / f"{name}.json"
        stored = document.get("predictions", {})
        missing = [c for c in conditions if c not in stored]
        if missing:
            raise ValueError(f"{where}: no {missing[0]} predictions (measured without that --snr?)")
        tested = [i for i in stored["clean"]["id"] if i in heldout]
        unknown = [i for i in tested if i not in by_id]
        if unknown:
            raise ValueError(f"{where}: {unknown[0]} is not an example of --data")
        if not tested:
            continue
        clips = load_clips([by_id[i] for i in tested], cache)
        blocks: dict[str, dict[str, Any]] = {"crossval": {}, "checkpoint": {}}
        for condition, snr in conditions.items():
            heard = clips if snr is None else [c for c in clips if c.has_audio]
            ids = [c.example.id for c in heard]
            outputs = predict_examples(predictor, heard, cache, snr_db=snr, seed=0)
            blocks["checkpoint"][condition] = prediction_record(ids, outputs)
            blocks["crossval"][condition] = restricted(stored[condition], set(ids))
        for side, predictions in blocks.items():
            target = out / side / f"{name}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            described = str(run) if side == "crossval" else f"{checkpoint} ({version})"
            record = {"fold": name, "source": described, "predictions": predictions}
            target.write_text(json.dumps(record) + "\n")
        log.info("%s: %d held-out clips paired", name, len(clips))
        measured.append(name)
    if not measured:
        raise ValueError(f"{run}: no fold tested a clip of the held-out split's test part")
    return measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.heldout_vs_crossval", description=__doc__
    )
    parser.add_argument("--data", required=True, type=Path, help="the data the run was made on")
    parser.add_argument("--run", required=True, type=Path, help="an lgfn crossval --out folder")
    parser.add_argument("--checkpoint", required=True, help="shipped name or checkpoint folder")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--snr", type=float, nargs="*", default=[], help="also at these SNRs (dB)")
    parser.add_argument("--by-label", action="store_true", help="per source label as well")
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
        pair_with_checkpoint(
            args.run,
            args.checkpoint,
            examples,
            heldout_test_ids(args.data),
            args.out,
            args.snr,
            args.precision,
            args.threads,
            args.cache,
            args.device,
        )
        reports = [
            compare_crossval(
                args.out / "crossval",
                args.out / "checkpoint",
                examples,
                MOODS,
                samples=args.samples,
                by_label=by_label,
            )
            for by_label in ((False, True) if args.by_label else (False,))
        ]
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"A: the fold models of {args.run}; B: {args.checkpoint}, on the held-out test clips")
    for report in reports:
        print(format_crossval_comparison(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
