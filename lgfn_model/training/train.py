"""`lgfn train`: train LGFN from scratch on labelled data, deterministically.

Training reads cached audio and cached float32 line vectors (``load_items``) and pools each
example's windows inside its losses (``losses.py``: the mean of the window outputs, as the
predictor's ``lgfn_model/runtime/pooling.py``). There is no validation
pass in here: every measurement of a trained model goes through the Predictor
(``lgfn_model/evaluation/predicting.py``).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lgfn_model.model.config import PRETRAINED_SAMPLE_RATES, LGFNConfig
from lgfn_model.model.network import LGFN, build_lgfn
from lgfn_model.pretrained.student import read_student_config
from lgfn_model.runtime.checkpoint import save_checkpoint
from lgfn_model.training.batches import LoadedExample, targets_of, training_batch
from lgfn_model.training.cache import FeatureCache
from lgfn_model.training.dataset_weighting import (
    check_dataset_weights,
    check_readout_weights,
    oversampled,
)
from lgfn_model.training.datasets import DEVELOPMENT_DATASETS, Example, load_examples
from lgfn_model.training.forward import forward_batch, training_autocast
from lgfn_model.training.losses import describe_named, losses, moods_named, teacher_losses
from lgfn_model.training.lyric_inputs import ensure_lyric_inputs, load_lyric_inputs
from lgfn_model.training.lyric_pairing import lyric_donors
from lgfn_model.training.lyrics_readout_fit import readout_from_items
from lgfn_model.training.pretrained_cache import attach_pretrained
from lgfn_model.training.splits import Split, low_label, make_split
from lgfn_model.training.trainable import freeze_all_but, parameter_groups
from lgfn_model.training.warm_start import warm_start
from lgfn_model.training.weight_averaging import (
    EpochWeightAverage,
    keep_last_epoch,
    rate_schedule,
    recompute_batch_norm,
    statistics_pass,
)

log = logging.getLogger(__name__)

ABLATIONS: dict[str, dict[str, Any]] = {
    "full": {},
    "audio-only": {"fusion": "audio_only"},
    "lyrics-only": {"fusion": "lyrics_only"},
    "concat": {"fusion": "concat"},
    "no-aal": {"use_aal": False},
    "no-waveform": {"use_waveform_branch": False},
    "no-pretrained": {"pretrained_audio": None},
}


@dataclass
class TrainSettings:
    data: Path
    out: Path
    cache: Path | None = None
    split: str = "heldout"
    ablation: str = "full"
    label_fraction: float = 1.0
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 0.05
    drop_lyrics: float = 0.3
    pseudo_sync: float = 0.35
    clip_chance: float = 0.0
    # "musicnn-student" models: the student reads each window before noise and clipping while
    # the from-scratch branches see the damage, as the default model's cached (clean) musicnn
    # features do.
    clean_student: bool = False
    # SNRs (dB) at which the frozen pretrained branch's features are also cached from seeded
    # noisy copies of each clip; a noisy training window then takes one of these SNRs and the
    # matching features, so the branch learns to be read through noise (pretrained_cache.py).
    # Empty: the branch reads clean features only, as the shipped models were trained.
    pretrained_noise: tuple[float, ...] = ()
    # Each epoch sees every training example of these datasets this many times (other random
    # windows, noise and lyrics drops each time): {"mirex": 2} weighs the real songs with
    # lyrics, the set closest to a user's library, twice. Empty: every example once.
    oversample: dict[str, int] = field(default_factory=dict)
    # Every loss of these datasets' examples (labels and teacher) scaled by this weight:
    # {"nju": 0.1} lets NJU shape the model a tenth as much (dataset_weighting.py). Empty: all 1.
    dataset_weights: dict[str, float] = field(default_factory=dict)
    # The chance that a training clip with a mood and no lyrics (4Q, MIREX-like songs without
    # words) reads the lyrics of a lyrics-only training example of the same mood instead
    # (lyric_pairing.py): audio + words on every set with audio. 0: off.
    pair_lyrics: float = 0.0
    # The mood loss's softmax runs, for each example, over the moods its dataset names among
    # the training examples (MIREX-like: happy, angry, sad), so a source that never says
    # relaxed does not teach that its songs are not relaxed (moods_named). False: all four.
    mood_mask: bool = False
    # Knowledge distillation: a trained checkpoint (path or shipped name) whose outputs on each
    # training window the model also learns to match, with this weight and temperature.
    teacher: str | None = None
    teacher_weight: float = 1.0
    teacher_temperature: float = 2.0
    # "musicnn-student" models: the distilled student (`lgfn distill --out`) to start from
    # instead of the shipped one.
    student: Path | None = None
    # A trained checkpoint (path or shipped name) to start from instead of random weights
    # (see warm_start.py); the schedule and epochs are still this run's.
    init: str | None = None
    # Save the mean of the weights at the end of the last N epochs (weight_averaging.py), and
    # the last epoch's own weights in ``out/last-epoch``. 0: the last epoch's weights.
    average_epochs: int = 0
    # With ``average_epochs``: the rate over the averaged epochs, as a share of each group's
    # peak, held there (stochastic weight averaging proper; the batch norms' statistics are
    # then recomputed for the averaged weights). 0: the one-cycle anneal runs through them.
    average_rate: float = 0.0
    # Train only the parameters under these module prefixes (e.g. "distilled"); the rest,
    # batch-norm statistics included, stays as it started (useful with ``init``).
    train_only: tuple[str, ...] = ()
    # After training, fit a lyrics read-out on the training examples' whole-text vectors
    # (model/lyrics_readout.py, as `lgfn readout` does), each dataset's examples weighed by
    # ``readout_weights`` (default 1). Needs song_text.
    lyrics_readout: bool = False
    readout_weights: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    device: str = "auto"
    # bf16 autocast for the forward passes on the CPU too (on a GPU training always runs under
    # it); the weights, the optimiser and the losses stay float32.
    bf16: bool = False
    workers: int = 2
    version: str = ""
    config_overrides: dict[str, Any] = field(default_factory=dict)


def _student_source(settings: TrainSettings, config: LGFNConfig) -> str | None:
    """Which distilled student the model started from, for the checkpoint's metadata."""
    if config.pretrained_audio != "musicnn-student":
        return None
    if settings.student is None:
        return "shipped (lgfn_model/weights/musicnn_student)"
    return "/".join(Path(settings.student).parts[-2:])  # "students/fold-1", not "fold-1"


def build_config(settings: TrainSettings) -> LGFNConfig:
    if settings.ablation not in ABLATIONS:
        raise ValueError(f"unknown ablation {settings.ablation!r}; choose from {sorted(ABLATIONS)}")
    values: dict[str, Any] = {**ABLATIONS[settings.ablation], **settings.config_overrides}
    values["version"] = settings.version or f"lgfn-{settings.ablation}-s{settings.seed}"
    if values.get("pretrained_audio") == "musicnn-student":
        # The checkpoint must rebuild the student it was trained from.
        architecture = read_student_config(settings.student)
        values.setdefault("student_channels", architecture.channels)
        values.setdefault("student_hidden", architecture.hidden)
    elif settings.student is not None:
        raise ValueError('--student needs a model with pretrained_audio="musicnn-student"')
    elif settings.clean_student:
        raise ValueError('--clean-student needs a model with pretrained_audio="musicnn-student"')
    # Checked before training: a bad --set value would otherwise train for an hour and then
    # write a checkpoint that no loader accepts (ConfigError is a ValueError).
    config = LGFNConfig(**values).validate()
    if settings.lyrics_readout and not config.song_text:
        raise ValueError("--lyrics-readout reads the whole text's vector: it needs song_text")
    if settings.lyrics_readout and settings.average_epochs:
        raise ValueError(
            "--lyrics-readout with --average-epochs: the last epoch's model would be filed "
            "without one; fit it afterwards with `lgfn readout` instead"
        )
    if settings.pretrained_noise and config.pretrained_audio not in PRETRAINED_SAMPLE_RATES:
        cached = " or ".join(repr(name) for name in sorted(PRETRAINED_SAMPLE_RATES))
        raise ValueError(
            f"--pretrained-noise needs a cached frozen branch (pretrained_audio {cached}); "
            f"this model's is {config.pretrained_audio!r}"
        )
    return config


def prepare_split(settings: TrainSettings) -> Split:
    # ``all`` trains on what cross-validation measures recipes on: MoodyLyrics4Q too.
    everything = settings.split == "all"
    examples = load_examples(
        settings.data, DEVELOPMENT_DATASETS if everything else None, manifest=True
    )
    if not examples:
        raise ValueError(f"{settings.data}: no labelled examples found")
    split = make_split(settings.split, examples)
    if settings.label_fraction < 1.0:
        split.train = low_label(split.train, settings.label_fraction, seed=settings.seed)
    split.train = [e for e in split.train if e.labelled]
    return split


def load_items(
    examples: list[Example],
    cache: FeatureCache,
    encoder: str,
    workers: int,
    song_text: bool = False,
    line_context: bool = False,
) -> list[LoadedExample]:
    """Cached audio and lyric embeddings for ``examples``, filling the cache where needed;
    with ``song_text``, each lyrics file's whole-text vector too; with ``line_context``, the
    lines read in the context of the whole text (``training.lyric_inputs``).

    An example whose audio cannot be decoded is dropped with a warning (and so is one that
    has neither audio nor lyrics left).
    """
    audio_errors = cache.ensure_audio([e.audio for e in examples if e.audio], workers=workers)
    reads = {"song_text": song_text, "line_context": line_context}
    lyric_errors = ensure_lyric_inputs(
        cache, [e.lyrics for e in examples if e.lyrics], encoder, **reads
    )
    for source, error in {**audio_errors, **lyric_errors}.items():
        log.warning("skipped %s: %s", source, error)
    failed = {str(Path(p)) for p in (*audio_errors, *lyric_errors)}
    items = []
    for example in examples:
        if example.audio and str(Path(example.audio)) in failed:
            continue
        samples = cache.load_audio(example.audio).astype(np.float16) if example.audio else None
        lyrics = None
        if example.lyrics and str(Path(example.lyrics)) not in failed:
            lyrics = load_lyric_inputs(cache, example.lyrics, encoder, **reads)
        if samples is None and (lyrics is None or len(lyrics) == 0):
            continue
        items.append(LoadedExample(example, samples, lyrics))
    return items


def resolve(device: str) -> torch.device:
    from lgfn_model.runtime.device import resolve_device

    return resolve_device(device)


def start_from(model: LGFN, init: str | None) -> str | None:
    """Warm-start ``model`` from the checkpoint ``init``; its version, for the metadata."""
    if not init:
        return None
    from lgfn_model.runtime.checkpoint import load_checkpoint

    source = load_checkpoint(init)
    warm_start(model, source, init)
    return source.config.version or str(init)


def load_teacher(
    settings: TrainSettings,
    config: LGFNConfig,
    items: list[LoadedExample],
    cache: FeatureCache,
    device: torch.device,
) -> LGFN | None:
    """The frozen teacher model; its musicnn features are cached on the items like a
    musicnn model's own (windows then start on the 3 s grid)."""
    if not settings.teacher:
        return None
    from lgfn_model.runtime.checkpoint import load_checkpoint

    teacher = load_checkpoint(settings.teacher, device=device).eval()
    if teacher.config.audio != config.audio or teacher.config.labels != config.labels:
        raise ValueError(
            f"teacher {settings.teacher} was trained on other windows or labels than this model"
        )
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    # One set of cached features feeds both models' frozen branches (``forward_batch``), so
    # they must be the same branch ("musicnn-msd" and "musicnn-jamendo" cache different ones).
    own = config.pretrained_audio
    theirs = teacher.config.pretrained_audio
    if teacher.pretrained is not None and own in PRETRAINED_SAMPLE_RATES and own != theirs:
        raise ValueError(
            f"teacher {settings.teacher} has pretrained_audio {theirs!r}, this model {own!r}: "
            "a teacher must have the same frozen pretrained branch, or none"
        )
    if teacher.pretrained is not None:
        attach_pretrained(items, cache, teacher, device, settings.pretrained_noise)
    log.info("distilling from teacher %s", teacher.config.version)
    return teacher


def train(settings: TrainSettings, split: Split | None = None) -> tuple[LGFN, dict[str, Any]]:
    """Train a model on ``split.train`` and save it to ``settings.out``."""
    started = time.perf_counter()
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    device = resolve(settings.device)
    config = build_config(settings)
    split = split or prepare_split(settings)
    cache = FeatureCache(settings.cache, sample_rate=config.audio.sample_rate)
    items = load_items(
        split.train,
        cache,
        config.text_encoder,
        settings.workers,
        song_text=config.song_text,
        line_context=config.line_context,
    )
    if config.fusion == "lyrics_only":
        items = [i for i in items if i.lyrics is not None and len(i.lyrics) > 0]
    if config.fusion == "audio_only":
        items = [i for i in items if i.samples is not None]
    model = build_lgfn(config, student_weights=settings.student).to(device).train()
    started_from = start_from(model, settings.init)
    freeze_all_but(model, settings.train_only)
    if model.pretrained is not None:
        attach_pretrained(items, cache, model, device, settings.pretrained_noise)
    teacher = load_teacher(settings, config, items, cache, device)
    epoch_items = oversampled(items, settings.oversample)
    check_dataset_weights(items, settings.dataset_weights)
    check_readout_weights([i for i in items if i.lyrics is not None], settings.readout_weights)
    prepared_s = time.perf_counter() - started
    log.info("training on %d examples (%.0f s to prepare)", len(items), prepared_s)
    if settings.oversample:
        log.info("%d examples an epoch with --oversample", len(epoch_items))
    donors = lyric_donors(items, settings.pair_lyrics)
    named = moods_named([i.example for i in items]) if settings.mood_mask else None
    if named is not None:
        log.info("mood loss over the moods each dataset names: %s", describe_named(named))

    groups = parameter_groups(model, settings.learning_rate)
    optimizer = torch.optim.AdamW(groups, weight_decay=settings.weight_decay)
    steps_per_epoch = math.ceil(len(epoch_items) / settings.batch_size)
    scheduler = rate_schedule(
        optimizer, settings.epochs, steps_per_epoch, settings.average_epochs, settings.average_rate
    )
    average = (
        EpochWeightAverage(settings.average_epochs, settings.epochs, settings.average_rate)
        if settings.average_epochs
        else None
    )
    # How each training window is drawn and spoiled (also for the batch-norm pass).
    augmentation: dict[str, Any] = {
        "drop_lyrics": settings.drop_lyrics,
        "noise_snr_db": (0.0, 30.0),
        "pseudo_sync": settings.pseudo_sync,
        "clip_chance": settings.clip_chance,
        "keep_clean": settings.clean_student,
        "pretrained_noise": settings.pretrained_noise,
    }
    history = []
    for epoch in range(settings.epochs):
        order = rng.permutation(len(epoch_items))
        epoch_loss, epoch_started = 0.0, time.perf_counter()
        for step in range(steps_per_epoch):
            chosen = [
                epoch_items[i]
                for i in order[step * settings.batch_size : (step + 1) * settings.batch_size]
            ]
            batch = training_batch(
                chosen, config, rng, **augmentation, pair_lyrics=settings.pair_lyrics, donors=donors
            ).to(device)
            examples = [i.example for i in chosen]
            targets = targets_of(examples, named, settings.dataset_weights).to(device)
            with training_autocast(device, settings.bf16):
                out = forward_batch(model, batch)
            loss = losses(out, batch.track_index, batch.n_tracks, targets)
            if teacher is not None:
                with torch.no_grad(), training_autocast(device, settings.bf16):
                    taught = forward_batch(teacher, batch)
                loss = loss + settings.teacher_weight * teacher_losses(
                    out,
                    taught,
                    batch.track_index,
                    batch.n_tracks,
                    settings.teacher_temperature,
                    targets.weight,
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 5.0)
            optimizer.step()
            scheduler.step()
            epoch_loss += float(loss.detach())
        history.append(round(epoch_loss / max(1, steps_per_epoch), 4))
        log.info(
            "epoch %d/%d loss %.4f (%.0f s)",
            epoch + 1,
            settings.epochs,
            history[-1],
            time.perf_counter() - epoch_started,
        )
        if average is not None:
            average.after_epoch(epoch, model)
    model.eval()
    elapsed = time.perf_counter() - started
    metadata = {
        "trained_on": split.name,
        "split_description": split.description,
        "train_examples": len(items),
        "ablation": settings.ablation,
        "label_fraction": settings.label_fraction,
        "epochs": settings.epochs,
        "batch_size": settings.batch_size,
        "learning_rate": settings.learning_rate,
        "weight_decay": settings.weight_decay,
        "drop_lyrics": settings.drop_lyrics,
        "pseudo_sync": settings.pseudo_sync,
        "clip_chance": settings.clip_chance,
        "clean_student": settings.clean_student,
        "pretrained_noise": list(settings.pretrained_noise) or None,
        "oversample": dict(settings.oversample) or None,
        "dataset_weights": dict(settings.dataset_weights) or None,
        "pair_lyrics": settings.pair_lyrics or None,
        "mood_mask": describe_named(named) if named is not None else None,
        "student": _student_source(settings, config),
        "init": started_from,
        "train_only": list(settings.train_only) or None,
        "teacher": teacher.config.version if teacher is not None else None,
        "teacher_weight": settings.teacher_weight if teacher is not None else None,
        "teacher_temperature": settings.teacher_temperature if teacher is not None else None,
        "seed": settings.seed,
        "device": str(device),
        "bf16_autocast": device.type == "cuda" or settings.bf16,
        "threads": torch.get_num_threads(),
        "train_seconds": round(elapsed, 1),
        "loss_per_epoch": history,
        "average_epochs": settings.average_epochs or None,
        "average_rate": settings.average_rate or None,
    }
    if average is not None:
        keep_last_epoch(model, settings.out, metadata, average)
        if settings.average_rate:
            # Weights averaged over a high rate lie where no epoch's statistics were taken.
            metadata["batch_norm_recomputed"] = recompute_batch_norm(
                model,
                lambda: statistics_pass(
                    model,
                    epoch_items,
                    config,
                    device,
                    seed=settings.seed,
                    batch_size=settings.batch_size,
                    bf16=settings.bf16,
                    **augmentation,
                ),
            )
    if settings.lyrics_readout:
        metadata["lyrics_readout"] = readout_from_items(model, items, settings.readout_weights)
    save_checkpoint(model, settings.out, metadata=metadata)
    return model, metadata
