"""`lgfn evaluate`: the figures of a checkpoint on the held-out split, optionally with noise.

The clips are predicted through the Predictor, as users' files are
(``lgfn_model/evaluation/predicting.py``), from audio already decoded into the feature cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lgfn_model.evaluation.metrics import evaluate_examples, format_report, summary_table
from lgfn_model.evaluation.predicting import (
    Clip,
    load_clips,
    measuring_predictor,
    predict_examples,
    seen_test_note,
)
from lgfn_model.runtime.predictor import Predictor
from lgfn_model.training.cache import FeatureCache
from lgfn_model.training.datasets import load_examples
from lgfn_model.training.splits import make_split


def subsets(clips: list[Clip]) -> dict[str, np.ndarray]:
    audio = np.array([c.has_audio for c in clips], dtype=bool)
    lyrics = np.array([c.has_lyrics for c in clips], dtype=bool)
    return {
        "audio clips (4Q + MIREX-like)": audio,
        "audio clips with lyrics": audio & lyrics,
        "audio clips without lyrics": audio & ~lyrics,
        "lyrics only (NJU, no audio)": ~audio,
    }


def evaluate_model(
    predictor: Predictor,
    clips: list[Clip],
    cache: FeatureCache,
    snr_db: float | None = None,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    outputs = predict_examples(predictor, clips, cache, snr_db=snr_db, seed=seed)
    results = evaluate_examples(
        [c.example for c in clips],
        outputs["probs"],
        outputs["p_valence"],
        outputs["p_arousal"],
        subsets=subsets(clips),
    )
    for name, mask in subsets(clips).items():
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
    threads: int | None = None,
) -> tuple[str, dict[str, Any]]:
    """``workers``: processes decoding clips into the cache (the first run only)."""
    predictor = measuring_predictor(checkpoint, device, precision, threads)
    split = make_split(split_name, load_examples(data))
    cache = FeatureCache(cache_dir, sample_rate=predictor.config.audio.sample_rate)
    clips = load_clips(split.test, cache, workers)
    version = predictor.version
    report: dict[str, Any] = {
        "model": version,
        "precision": str(predictor.dtype).removeprefix("torch."),
        "text_precision": predictor.text_precision,
        "threads": predictor.threads,
        "split": split.name,
        "n": len(clips),
        "clean": evaluate_model(predictor, clips, cache, seed=seed),
    }
    text = [
        f"model {version} ({report['precision']}, lyrics {report['text_precision']}, "
        f"{predictor.threads} threads), {split.name} split, test part: {len(clips)} examples",
        format_report(report["clean"], title="-- clean audio"),
    ]
    note = seen_test_note(checkpoint, split.name)
    if note is not None:
        report["note"] = note
        text.insert(1, note)
    for snr in snrs or []:
        key = f"snr_{snr:g}db"
        report[key] = evaluate_model(predictor, clips, cache, snr_db=snr, seed=seed)
        text.append(
            format_report(report[key], title=f"-- white noise at {snr:g} dB SNR (seed {seed})")
        )
    headline = {
        name: result[list(result)[0]] for name, result in report.items() if isinstance(result, dict)
    }
    text.append("-- summary (audio clips)\n" + summary_table(headline))
    stats = predictor.stats
    report["seconds"] = {"lyrics": round(stats.text_s, 1), "model": round(stats.model_s, 1)}
    return "\n".join(text), report
