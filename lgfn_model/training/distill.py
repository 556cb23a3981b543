"""`lgfn distill`: train the compact musicnn student (``lgfn_model.pretrained.student``).

Targets are musicnn's 250 features of each 3 s patch on the clip's grid (the pretrained-feature
cache, computed once), standardised per feature. Inputs are the log-mel of a 9 s window on that
grid, as LGFN computes it; half the windows get white noise (0-30 dB SNR) and a fifth are
driven into clipping (+6 to +12 dB), while the targets stay those of the clean audio: the
student learns musicnn's view of the music, not of the damage.

Only the training part of the held-out split is used (its audio, no labels), so the held-out
clips stay unseen; the figures printed at the end are on the held-out clips. With ``fold`` set
(``--fold N``), the training part of cross-validation fold N is used instead, as `lgfn crossval`
makes the folds, and the figures are on that fold's test clips: a student for `lgfn crossval
--student-folds` that never heard the fold's test songs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812

from lgfn_model.model.components import LogMel, PretrainedTagger
from lgfn_model.model.config import AudioConfig
from lgfn_model.pretrained.student import MusicnnStudent, StudentConfig, save_student
from lgfn_model.training.batches import add_noise, clip_loud
from lgfn_model.training.cache import FeatureCache
from lgfn_model.training.crossval_student import fold_record
from lgfn_model.training.datasets import load_examples
from lgfn_model.training.pretrained_cache import PretrainedFeatureCache
from lgfn_model.training.splits import KFOLD_SALT, Split, kfold_splits, make_split

log = logging.getLogger(__name__)
PATCH = PretrainedTagger.PATCH_SAMPLES


@dataclass
class DistillSettings:
    data: Path
    out: Path
    cache: Path | None = None
    epochs: int = 12
    windows_per_clip: int = 4
    batch_size: int = 32
    learning_rate: float = 3e-3
    seed: int = 0
    workers: int = 2
    device: str = "auto"
    architecture: StudentConfig = field(default_factory=StudentConfig)
    # bf16 autocast for the student's forward pass: ~2x faster on AMX CPUs and GPUs; the
    # optimiser, the loss and the weights stay float32.
    bf16: bool = False
    # Weight of the error along the directions of musicnn's features that predict the training
    # labels (see ``label_directions``), on top of the plain MSE over all 250 features; 0: off.
    task_weight: float = 0.0
    # Extra unlabelled training audio: this many copies of the training clips, each clip mixed
    # with another at random, with musicnn's features of the mix as targets (computed per run).
    # 2, as the shipped student: 0 and 4 copies lost by cross-validation.
    mix_copies: int = 2
    # Cross-validation fold (1-based) whose training part to distil on, of ``folds`` folds;
    # None: the held-out split's training part (the shipped student).
    fold: int | None = None
    folds: int = 5


@dataclass
class Clip:
    samples: np.ndarray  # float16 mono at 16 kHz
    targets: np.ndarray  # (patches, 250) float32, standardised

    @property
    def windows(self) -> int:
        return max(1, len(self.targets) - 2)


def load_clips(
    sources: list[Path], cache: FeatureCache, device: torch.device, workers: int
) -> list[tuple[Path, np.ndarray, np.ndarray]]:
    """(source, samples, raw musicnn features) of each decodable clip, filling both caches."""
    errors = cache.ensure_audio(sources, workers=workers)
    sources = [s for s in sources if s not in errors]
    store = PretrainedFeatureCache(cache, "musicnn-msd")
    window = AudioConfig().window_samples
    store.ensure(sources, PretrainedTagger(1, 1).load_shipped_tagger(), window, device)
    return [
        (s, cache.load_audio(s).astype(np.float16), store.load(s).astype(np.float32))
        for s in sources
    ]


def window_of(clip: Clip, first_patch: int, size: int) -> np.ndarray:
    chunk = np.zeros(size, dtype=np.float32)
    part = clip.samples[first_patch * PATCH : first_patch * PATCH + size]
    chunk[: len(part)] = part
    return chunk


def degrade(window: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What users' files and the robustness checks do to audio: noise, clipping."""
    if rng.random() < 0.5:
        window = add_noise(window, float(rng.uniform(0.0, 30.0)), rng)
    if rng.random() < 0.2:
        window = clip_loud(window, float(rng.uniform(6.0, 12.0)))
    return window


def batches(
    clips: list[Clip], settings: DistillSettings, size: int, rng: np.random.Generator
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch: ``windows_per_clip`` random grid windows of each clip, shuffled, degraded.

    Made one batch at a time: an epoch's windows held at once are 0.57 MB each, 8 GB for the
    shipped student's 3,486 clips (two mixed copies) x 4 windows. The training loop draws
    nothing from ``rng``, so the batches are the same as if they were made up front.
    """
    picks = [
        (c, int(rng.integers(0, clips[c].windows)))
        for c in range(len(clips))
        for _ in range(settings.windows_per_clip)
    ]
    order = rng.permutation(len(picks))
    for start in range(0, len(order), settings.batch_size):
        chosen = [picks[i] for i in order[start : start + settings.batch_size]]
        waves = np.stack([degrade(window_of(clips[c], k, size), rng) for c, k in chosen])
        targets = np.stack([clips[c].targets[k : k + 3] for c, k in chosen])
        yield waves, targets


def label_directions(
    features: list[np.ndarray],
    labels: list[tuple[int | None, float | None, float | None]],
    ridge: float = 0.01,
) -> np.ndarray:
    """(250, k) unit directions of the standardised musicnn features that predict each label.

    One ridge regression per target (the four moods one-hot, the valence sign, the arousal
    sign) of every patch's features onto its clip's label, over the patches whose clip has
    that label. A student's error along these few directions is what costs the model its
    moods; the plain MSE spreads its weight over all 250 features alike.
    """
    x = np.concatenate(features).astype(np.float64)
    owner = np.concatenate([np.full(len(f), i) for i, f in enumerate(features)])
    columns = []
    for target in range(6):
        y = np.full(len(labels), np.nan)
        for i, (mood, valence, arousal) in enumerate(labels):
            if target < 4 and mood is not None:
                y[i] = 1.0 if mood == target else 0.0
            elif target == 4 and valence is not None:
                y[i] = float(np.sign(valence))
            elif target == 5 and arousal is not None:
                y[i] = float(np.sign(arousal))
        rows = ~np.isnan(y[owner])
        if rows.sum() < 2:
            continue
        xs, ys = x[rows], y[owner][rows] - y[owner][rows].mean()
        gram = xs.T @ xs / len(xs) + ridge * np.eye(x.shape[1])
        w = np.linalg.solve(gram, xs.T @ ys / len(xs))
        columns.append(w / (np.linalg.norm(w) + 1e-12))
    return np.stack(columns, axis=1).astype(np.float32)


def task_loss(
    predicted: torch.Tensor, targets: torch.Tensor, directions: torch.Tensor, variance: torch.Tensor
) -> torch.Tensor:
    """Mean squared error along ``directions``, each scaled by musicnn's variance along it."""
    error = (predicted - targets).reshape(-1, predicted.shape[-1]) @ directions
    return (error.square() / variance).mean()


def mix_with(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``a`` with a random stretch of ``b`` (looped to its length) 0-12 dB below it."""
    start = int(rng.integers(0, len(b)))
    other = np.resize(np.roll(b.astype(np.float32), -start), len(a))
    mine = a.astype(np.float32)
    level = np.sqrt(np.mean(mine**2) / max(float(np.mean(other**2)), 1e-10))
    mixed = mine + other * np.float32(level * 10 ** (-rng.uniform(0.0, 12.0) / 20))
    return mixed / max(1.0, float(np.abs(mixed).max()))


@torch.no_grad()
def mixed_clips(
    raw: list[tuple[Path, np.ndarray, np.ndarray]],
    copies: int,
    device: torch.device,
    rng: np.random.Generator,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(samples, musicnn's raw features) of ``copies`` mixes of every clip with another one.

    New audio for the student without new data: musicnn's view of a mix is not the mix of
    its views, so each mix is a target the student has not seen (~0.1 s per clip here).
    """
    tagger = PretrainedTagger(1, 1).load_shipped_tagger().to(device).eval()
    started, out = time.perf_counter(), []
    for copy in range(copies):
        for i, (_, samples, features) in enumerate(raw):
            j = int(rng.integers(0, len(raw) - 1))
            other = raw[j + (j >= i)][1]
            mixed = mix_with(samples, other, rng)
            count = len(features)
            padded = np.zeros(count * PATCH, dtype=np.float32)
            padded[: min(len(mixed), len(padded))] = mixed[: len(padded)]
            patches = torch.from_numpy(padded).view(count, PATCH).to(device)
            target = tagger.features(patches).reshape(count, -1).cpu().numpy()
            out.append((mixed.astype(np.float16), target.astype(np.float32)))
        log.info(
            "mixed copy %d/%d: musicnn features of %d mixes (%.0f s so far)",
            copy + 1,
            copies,
            len(raw),
            time.perf_counter() - started,
        )
    return out


@torch.no_grad()
def fidelity(
    student: MusicnnStudent,
    log_mel: LogMel,
    clips: list[Clip],
    device: torch.device,
    snr_db: float | None = None,
    seed: int = 0,
) -> float:
    """R^2 of the student's features against musicnn's on every grid window of ``clips``."""
    rng = np.random.default_rng(seed)
    size = AudioConfig().window_samples
    predictions, targets = [], []
    student.eval()
    for clip in clips:
        waves = np.stack([window_of(clip, k, size) for k in range(clip.windows)])
        if snr_db is not None:
            waves = np.stack([add_noise(w, snr_db, rng) for w in waves])
        out = student(log_mel(torch.from_numpy(waves).to(device)))
        predictions.append(out.cpu().numpy().reshape(-1, out.shape[-1]))
        targets.append(
            np.concatenate([clip.targets[k : k + 3] for k in range(clip.windows)], axis=0)
        )
    p, t = np.concatenate(predictions), np.concatenate(targets)
    return float(1 - np.square(p - t).sum() / np.square(t - t.mean(0)).sum())


def training_split(settings: DistillSettings) -> Split:
    """The held-out split, or the split of cross-validation fold ``settings.fold``."""
    if settings.fold is None:
        split = make_split("heldout", load_examples(settings.data))
        split.name = "the held-out split"
        return split
    from lgfn_model.training.crossval import development_examples

    if not 1 <= settings.fold <= settings.folds:
        raise ValueError(f"--fold: folds are numbered 1..{settings.folds}")
    split = kfold_splits(development_examples(settings.data), settings.folds)[settings.fold - 1]
    split.name = f"cross-validation fold {settings.fold} of {settings.folds}"
    return split


def distill(settings: DistillSettings) -> dict[str, Any]:
    from lgfn_model.runtime.device import resolve_device

    started = time.perf_counter()
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    device = resolve_device(settings.device)
    split = training_split(settings)
    cache = FeatureCache(settings.cache, sample_rate=AudioConfig().sample_rate)

    def sources(examples: list[Any]) -> list[Path]:
        return sorted({Path(e.audio) for e in examples if e.audio is not None})

    train_raw = load_clips(sources(split.train), cache, device, settings.workers)
    test_raw = load_clips(sources(split.test), cache, device, settings.workers)
    stacked = np.concatenate([features for _, _, features in train_raw])
    mean, std = stacked.mean(0), stacked.std(0) + 1e-3

    def standardised(raw: list[tuple[Path, np.ndarray, np.ndarray]]) -> list[Clip]:
        return [Clip(s, ((f - mean) / std).astype(np.float32)) for _, s, f in raw]

    train_clips, test_clips = standardised(train_raw), standardised(test_raw)
    log.info(
        "distilling on %d clips of %s (%d held out)", len(train_clips), split.name, len(test_clips)
    )
    mixes = [
        Clip(samples, ((f - mean) / std).astype(np.float32))
        for samples, f in mixed_clips(train_raw, settings.mix_copies, device, rng)
    ]
    directions = variance = None
    if settings.task_weight > 0:
        by_audio = {}
        for e in split.train:
            if e.audio is not None:
                by_audio.setdefault(Path(e.audio), (e.mood, e.valence, e.arousal))
        found = label_directions(
            [c.targets for c in train_clips], [by_audio[source] for source, _, _ in train_raw]
        )
        standard = np.concatenate([c.targets for c in train_clips]) @ found
        directions = torch.from_numpy(found).to(device)
        variance = torch.from_numpy(standard.var(0).astype(np.float32) + 1e-6).to(device)
        log.info("task-weighted distillation along %d label directions", found.shape[1])
    labelled_clips = len(train_clips)
    train_clips = train_clips + mixes

    audio = AudioConfig()
    log_mel = LogMel(audio).to(device)
    student = MusicnnStudent(settings.architecture).to(device)
    optimizer = torch.optim.AdamW(
        student.parameters(), lr=settings.learning_rate, weight_decay=1e-4
    )
    steps = settings.epochs * -(
        -len(train_clips) * settings.windows_per_clip // settings.batch_size
    )
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=settings.learning_rate, total_steps=max(1, steps), pct_start=0.1
    )
    history = []
    for epoch in range(settings.epochs):
        student.train()
        epoch_started, total, count = time.perf_counter(), 0.0, 0
        for waves, targets in batches(train_clips, settings, audio.window_samples, rng):
            with torch.no_grad():
                x = log_mel(torch.from_numpy(waves).to(device))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=settings.bf16):
                predicted = student(x)
            goal = torch.from_numpy(targets).to(device)
            loss = F.mse_loss(predicted.float(), goal)
            if directions is not None and variance is not None:
                loss = loss + settings.task_weight * task_loss(
                    predicted.float(), goal, directions, variance
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total, count = total + float(loss.detach()), count + 1
        history.append(round(total / max(1, count), 4))
        log.info(
            "epoch %d/%d mse %.4f (%.0f s)",
            epoch + 1,
            settings.epochs,
            history[-1],
            time.perf_counter() - epoch_started,
        )
    student = student.cpu().eval()
    log_mel = log_mel.cpu()
    cpu = torch.device("cpu")
    metadata = {
        "teacher": "musicnn MSD tagger (weights/musicnn_msd), 200 penultimate + 50 tag logits",
        "data": f"audio of {split.name}'s training part (labels unused)",
        "crossval": None
        if settings.fold is None
        else fold_record(settings.fold, settings.folds, KFOLD_SALT, split.test),
        "train_clips": labelled_clips,
        "mix_copies": settings.mix_copies,
        "epochs": settings.epochs,
        "windows_per_clip": settings.windows_per_clip,
        "bf16_autocast": settings.bf16,
        "task_weight": settings.task_weight,
        "parameters": sum(p.numel() for p in student.parameters()),
        "seed": settings.seed,
        "mse_per_epoch": history,
        "heldout_r2_clean": round(fidelity(student, log_mel, test_clips, cpu), 4),
        "heldout_r2_snr10": round(fidelity(student, log_mel, test_clips, cpu, snr_db=10.0), 4),
        "heldout_r2_snr0": round(fidelity(student, log_mel, test_clips, cpu, snr_db=0.0), 4),
        "train_seconds": round(time.perf_counter() - started, 1),
        "threads": torch.get_num_threads(),
    }
    save_student(student, settings.out, metadata)
    return metadata
