"""`lgfn evaluate`: the figures of a checkpoint on the held-out split, optionally with noise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from lgfn_model.evaluation.metrics import evaluate_examples, format_report, summary_table
from lgfn_model.model.network import LGFN
from lgfn_model.runtime.checkpoint import load_checkpoint
from lgfn_model.training.batches import LoadedExample
from lgfn_model.training.cache import FeatureCache
from lgfn_model.training.datasets import load_examples
from lgfn_model.training.splits import make_split
from lgfn_model.training.train import load_items, predict_items


def subsets(items: list[LoadedExample]) -> dict[str, np.ndarray]:
    audio = np.array([i.samples is not None for i in items], dtype=bool)
    lyrics = np.array([i.lyrics is not None and len(i.lyrics) > 0 for i in items], dtype=bool)
    return {
        "audio clips (4Q + MIREX-like)": audio,
        "audio clips with lyrics": audio & lyrics,
        "audio clips without lyrics": audio & ~lyrics,
        "lyrics only (NJU, no audio)": ~audio,
    }


def evaluate_model(
    model: LGFN,
    items: list[LoadedExample],
    device: torch.device,
    snr_db: float | None = None,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    outputs = predict_items(model, items, device, snr_db=snr_db, seed=seed)
    results = evaluate_examples(
        [i.example for i in items],
        outputs["probs"],
        outputs["p_valence"],
        outputs["p_arousal"],
        subsets=subsets(items),
    )
    for name, mask in subsets(items).items():
        gates = outputs["gate"][mask]
        results[name]["gate_audio_mean"] = float(gates.mean()) if len(gates) else None
    return results


def run_evaluation(
    data: Path,
    checkpoint: Path | None,
    split_name: str = "heldout",
    snrs: list[float] | None = None,
    cache_dir: Path | None = None,
    device: str = "auto",
    workers: int = 2,
    seed: int = 0,
    precision: str = "auto",
) -> tuple[str, dict[str, Any]]:
    from lgfn_model.runtime.device import resolve_device, resolve_precision

    resolved = resolve_device(device)
    model = load_checkpoint(checkpoint, device=resolved)
    dtype = resolve_precision(precision, resolved)
    model.set_compute_dtype(dtype)
    split = make_split(split_name, load_examples(data))
    cache = FeatureCache(cache_dir, sample_rate=model.config.audio.sample_rate)
    items = load_items(split.test, cache, model.config.text_encoder, workers)
    report: dict[str, Any] = {
        "model": model.config.version,
        "precision": str(dtype).removeprefix("torch."),
        "split": split.name,
        "n": len(items),
        "clean": evaluate_model(model, items, resolved, seed=seed),
    }
    text = [
        f"model {model.config.version} ({report['precision']}), {split.name} split, "
        f"test part: {len(items)} examples",
        format_report(report["clean"], title="-- clean audio"),
    ]
    for snr in snrs or []:
        key = f"snr_{snr:g}db"
        report[key] = evaluate_model(model, items, resolved, snr_db=snr, seed=seed)
        text.append(
            format_report(report[key], title=f"-- white noise at {snr:g} dB SNR (seed {seed})")
        )
    headline = {
        name: result[list(result)[0]] for name, result in report.items() if isinstance(result, dict)
    }
    text.append("-- summary (audio clips)\n" + summary_table(headline))
    return "\n".join(text), report
