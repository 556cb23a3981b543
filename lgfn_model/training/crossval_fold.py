"""One fold of `lgfn crossval`: train it by the recipe, measure it, write its result JSON.

A fold runs in the caller's process or in a spawned one (``--jobs``), so everything it needs
travels in a picklable :class:`FoldJob`. A recipe that averages its last epochs' weights
(``--average-epochs``) also measures the last epoch's own weights, the plain recipe's model of
the same training, into ``<out>/last-epoch/fold-<i>.json`` under the plain recipe's
fingerprint: `lgfn compare --crossval OUT OUT/last-epoch` then pairs the two with no second
training, and a plain run pointed at that folder resumes from it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lgfn_model.training.datasets import Example
from lgfn_model.training.splits import Split, low_label
from lgfn_model.training.train import TrainSettings
from lgfn_model.training.weight_averaging import LAST_EPOCH_DIR

log = logging.getLogger(__name__)

RESULT_VERSION = 2  # 2: folds measured through the Predictor (lyrics in its own precision)


@dataclass
class FoldJob:
    """Everything one fold's process needs (picklable: folds may run in spawned processes)."""

    index: int  # 1-based
    split: Split
    recipe: TrainSettings
    result: Path
    fingerprint: str
    snrs: tuple[float, ...] = ()
    precision: str = "auto"
    threads: int | None = None
    # With --average-epochs: the plain recipe's fingerprint, under which the last epoch's own
    # weights are measured into <out>/last-epoch/<fold>.json.
    last_epoch_fingerprint: str | None = None


def training_part(split: Split, recipe: TrainSettings) -> list[Example]:
    """What the recipe trains on of ``split.train``: as `lgfn train` prepares its split."""
    train = split.train
    if recipe.label_fraction < 1.0:
        train = low_label(train, recipe.label_fraction, seed=recipe.seed)
    return [e for e in train if e.labelled]


def last_epoch_result(result: Path) -> Path:
    """Where the last epoch's weights of an averaged fold are measured to."""
    return result.parent / LAST_EPOCH_DIR / result.name


def run_fold(job: FoldJob) -> dict[str, Any]:
    """Train fold ``job.index`` by the recipe, measure it, write its result JSON."""
    import torch

    from lgfn_model.evaluation.predicting import load_clips
    from lgfn_model.runtime.checkpoint import load_checkpoint
    from lgfn_model.training.cache import FeatureCache
    from lgfn_model.training.train import train

    _worker_logging(job.index)
    if job.threads:
        torch.set_num_threads(job.threads)
    started = time.perf_counter()
    split = replace(job.split, train=training_part(job.split, job.recipe))
    model, metadata = train(job.recipe, split)
    trained = time.perf_counter()
    cache = FeatureCache(job.recipe.cache, sample_rate=model.config.audio.sample_rate)
    clips = load_clips(job.split.test, cache, job.recipe.workers)  # once for both models
    result = measured(model, job, job.fingerprint, job.recipe.out, metadata, clips, cache)
    result["train_seconds"] = round(trained - started, 1)
    result["evaluate_seconds"] = round(time.perf_counter() - trained, 1)
    write_json(job.result, result)
    if job.last_epoch_fingerprint is not None:
        checkpoint = Path(job.recipe.out) / LAST_EPOCH_DIR
        last = load_checkpoint(checkpoint, device=model_device(model))
        plain = measured(last, job, job.last_epoch_fingerprint, checkpoint, metadata, clips, cache)
        plain["train_seconds"] = result["train_seconds"]
        plain["weights"] = "the last epoch's, of the averaged run in the folder above"
        write_json(last_epoch_result(job.result), plain)
    log.info(
        "fold %d done: %.0f s training, %.0f s measuring",
        job.index,
        result["train_seconds"],
        time.perf_counter() - trained,
    )
    return result


def measured(
    model: Any,
    job: FoldJob,
    fingerprint: str,
    checkpoint: Path,
    metadata: dict[str, Any],
    clips: list[Any],
    cache: Any,
) -> dict[str, Any]:
    """A trained model's figures and predictions on the fold's test ``clips``, clean and at
    each of ``job.snrs``: the fold result, less its timings."""
    import torch

    from lgfn_model.evaluation.crossval_measure import measure
    from lgfn_model.runtime.device import resolve_device
    from lgfn_model.runtime.predictor import Predictor

    device = resolve_device(job.recipe.device)
    # The trained model is measured as users would run it (it is saved already: the
    # predictor folds its batch norms, so it is not trained further).
    predictor = Predictor(
        model, device, workers=0, precision=job.precision, threads=torch.get_num_threads()
    )
    result: dict[str, Any] = {
        "version": RESULT_VERSION,
        "fold": job.index,
        "split": job.split.name,
        "description": job.split.description,
        "fingerprint": fingerprint,
        "checkpoint": str(checkpoint),
        "train_examples": metadata["train_examples"],
        "test_examples": len(clips),
        "excluded_examples": len(job.split.excluded),
        "precision": str(predictor.dtype).removeprefix("torch."),
        "text_precision": predictor.text_precision,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "loss_per_epoch": metadata["loss_per_epoch"],
    }
    predictions: dict[str, Any] = {}
    result["clean"], predictions["clean"] = measure(predictor, clips, cache, None)
    audio_clips = [c for c in clips if c.has_audio]
    for snr in job.snrs if audio_clips else ():
        key = noise_key(snr)
        result[key], predictions[key] = measure(predictor, audio_clips, cache, snr)
    result["predictions"] = predictions
    return result


def model_device(model: Any) -> Any:
    return next(model.parameters()).device


def noise_key(snr: float) -> str:
    """The condition a fold result stores an SNR's figures and predictions under."""
    return f"snr_{snr:g}db"


def _worker_logging(index: int) -> None:
    # A spawned process starts with no logging set up; an in-process fold keeps the caller's.
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=logging.INFO, format=f"lgfn fold {index}: %(message)s", stream=sys.stderr
        )


def write_json(path: Path, data: dict[str, Any]) -> None:
    # Written whole then renamed: an interrupted fold never leaves a result a resume would trust.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)
