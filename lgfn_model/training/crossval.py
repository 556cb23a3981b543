"""`lgfn crossval`: grouped, stratified K-fold cross-validation of a training recipe.

The held-out split has 290 audio clips and chose between recipes, so its figures are optimistic
(docs/cross-validation.md). Here every development example (4Q, MIREX-like, NJU, MoodyLyrics4Q)
is tested exactly once: K models are trained by the same recipe as `lgfn train` (the same
:func:`~lgfn_model.training.train.train`), each on K-1 folds, and measured by the same
evaluation code as `lgfn evaluate` on the fold it did not see. Figures are reported per
dataset (MIREX-like, 4Q, NJU, MoodyLyrics4Q) as the mean, spread and range over folds.
``--leave-out mirex|4q`` instead trains one model on every other dataset and tests it on all
of that one.

Every fold writes ``<out>/fold-<i>.json`` as soon as it is measured, with a fingerprint of the
recipe and of its split; a later run with the same ``--out`` skips the folds whose result is
there (a resume) and refuses to mix in results of another recipe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import platform
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from lgfn_model.evaluation.crossval_report import aggregate
from lgfn_model.training.crossval_fold import (
    RESULT_VERSION,
    FoldJob,
    noise_key,
    run_fold,
)
from lgfn_model.training.crossval_student import check_fold_student, check_student_recipe
from lgfn_model.training.crossval_teacher import check_fold_teacher
from lgfn_model.training.datasets import DEVELOPMENT_DATASETS, Example, load_examples
from lgfn_model.training.splits import (
    KFOLD_SALT,
    Split,
    kfold_splits,
    leave_out_split,
    stable_hash,
)
from lgfn_model.training.train import TrainSettings

log = logging.getLogger(__name__)

LIMIT_SALT = "lgfn-crossval-limit-v1"
LEAVE_OUT_CHOICES = ("mirex", "4q")
#: Audio datasets: the only ones measured again with noise (noise is added to the audio).
AUDIO_DATASETS = ("mirex", "4q")


@dataclass
class CrossvalSettings:
    data: Path
    recipe: TrainSettings  # its ``out`` is replaced by each fold's folder
    out: Path = Path("runs/crossval")
    folds: int = 5
    leave_out: str | None = None
    jobs: int = 1
    threads: int | None = None  # torch threads per fold (default: the cores shared by --jobs)
    limit: int | None = None  # at most this many examples per dataset (smoke runs)
    only: tuple[int, ...] = ()  # train only these folds (1-based); the report covers done ones
    snrs: tuple[float, ...] = ()  # also measure the audio sets with white noise at these SNRs
    precision: str = "auto"
    salt: str = KFOLD_SALT
    # Another run's --out over the same folds: each fold distils from that run's model of the
    # same fold (never from a model that saw its test songs), e.g. the `fast` recipe's teacher.
    teacher_folds: Path | None = None
    # A folder of students distilled per fold (`lgfn distill --fold N --out DIR/fold-N`): each
    # fold's model starts from the student that never heard its test songs.
    student_folds: Path | None = None


# ---------------------------------------------------------------------------------------------
# Data and splits


def development_examples(data: Path, limit: int | None = None) -> list[Example]:
    """All development data under ``data`` (MoodyLyrics4Q included, a root's manifest.csv too),
    or at most ``limit`` examples of each dataset, hash-chosen so a smoke run is repeatable."""
    examples = load_examples(data, DEVELOPMENT_DATASETS, manifest=True)
    if limit is None:
        return examples
    if limit < 1:
        raise ValueError("--limit must be at least 1")
    kept: list[Example] = []
    for name in sorted({e.dataset for e in examples}):
        mine = [e for e in examples if e.dataset == name]
        mine.sort(key=lambda e: (stable_hash(f"{LIMIT_SALT}:{e.id}"), e.id))
        kept.extend(mine[:limit])
    return sorted(kept, key=lambda e: e.id)


def make_splits(settings: CrossvalSettings, examples: Sequence[Example]) -> list[Split]:
    if settings.leave_out is not None:
        return [leave_out_split(examples, settings.leave_out)]
    return kfold_splits(examples, settings.folds, salt=settings.salt)


# Fields of TrainSettings that do not change what is trained (where it goes, how fast).
_NOT_RECIPE = ("data", "out", "cache", "device", "workers", "split")


# Recipe fields added after fold results were first stored: left out of the fingerprint while
# at their default, so results of recipes that do not use them stay valid.
_OMITTED_AT_DEFAULT: dict[str, Any] = {"pretrained_noise": (), "oversample": {}, "bf16": False}
_OMITTED_AT_DEFAULT |= {"pair_lyrics": 0.0, "mood_mask": False, "dataset_weights": {}}
_OMITTED_AT_DEFAULT |= {"average_epochs": 0, "average_rate": 0.0}
_OMITTED_AT_DEFAULT |= {"lyrics_readout": False, "readout_weights": {}}


def recipe_dict(recipe: TrainSettings) -> dict[str, Any]:
    values = {
        k: v
        for k, v in asdict(recipe).items()
        if k not in _NOT_RECIPE and _OMITTED_AT_DEFAULT.get(k, object()) != v
    }
    return json.loads(json.dumps(values, default=str))


def fingerprint(recipe: TrainSettings, split: Split, precision: str) -> str:
    """What a stored fold result must match to be reused: the recipe and the fold's examples."""
    payload = {
        "version": RESULT_VERSION,
        "recipe": recipe_dict(recipe),
        "precision": precision,
        "train": [e.id for e in split.train],
        "test": [e.id for e in split.test],
    }
    text = json.dumps(payload, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def check_recipe(recipe: TrainSettings) -> None:
    # A shipped or earlier checkpoint was trained on the held-out split's training part, which
    # holds most of every test fold: distilling from it or starting from it leaks test songs.
    if recipe.teacher or recipe.init:
        raise ValueError(
            "--teacher and --init start from a model trained on most of every test fold; "
            "distil from a teacher per fold instead (--teacher-folds RUN: another crossval "
            "run over the same folds)"
        )
    from lgfn_model.training.train import build_config

    build_config(recipe)  # a bad --set fails now, not after the caches are filled


# ---------------------------------------------------------------------------------------------
# Caches and scheduling


def warm_caches(examples: Sequence[Example], recipe: TrainSettings) -> None:
    """Decode, embed and (musicnn) featurise every example once, before any fold starts.

    Why up front: folds running side by side would otherwise compute the same clips' features
    twice, and each fold needs the clips that an earlier fold held out. Nothing is loaded into
    memory here; each fold reads the cache.
    """
    from lgfn_model.training.cache import FeatureCache
    from lgfn_model.training.pretrained_cache import PretrainedFeatureCache
    from lgfn_model.training.train import build_config, resolve

    config = build_config(recipe)
    cache = FeatureCache(recipe.cache, sample_rate=config.audio.sample_rate)
    audio = [Path(e.audio) for e in examples if e.audio is not None]
    failed = cache.ensure_audio(audio, workers=recipe.workers)
    lyrics = [e.lyrics for e in examples if e.lyrics is not None]
    from lgfn_model.training.lyric_inputs import ensure_lyric_inputs

    ensure_lyric_inputs(
        cache,
        lyrics,
        config.text_encoder,
        song_text=config.song_text,
        line_context=config.line_context,
    )
    if config.pretrained_audio is None:
        return
    from lgfn_model.model.network import build_lgfn

    model = build_lgfn(config, student_weights=recipe.student)
    if model.pretrained is None:
        return
    device = resolve(recipe.device)
    good = [p for p in audio if p not in failed]
    branch = config.pretrained_audio or "pretrained"
    for snr in (None, *recipe.pretrained_noise):
        store = PretrainedFeatureCache(cache, branch, snr_db=snr)
        store.ensure(good, model.pretrained, config.audio.window_samples, device)


def fold_threads(settings: CrossvalSettings) -> int | None:
    if settings.threads:
        return settings.threads
    if settings.jobs <= 1:
        return None  # torch's own default, or what --threads set in this process
    return max(1, (os.cpu_count() or 1) // settings.jobs)


def load_done(path: Path, expected: str) -> dict[str, Any] | None:
    """A fold's stored result if it is this recipe's on this fold; an error if it is not."""
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    if result.get("fingerprint") != expected:
        raise ValueError(
            f"{path} holds a result of another recipe or split; use another --out "
            "(or delete that file to retrain the fold)"
        )
    return result


def run_jobs(jobs: list[FoldJob], processes: int) -> list[dict[str, Any]]:
    if processes <= 1 or len(jobs) <= 1:
        return [run_fold(job) for job in jobs]
    # spawn, not fork: forking a process that has used torch's thread pools can hang.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(processes, len(jobs)), mp_context=context) as pool:
        return list(pool.map(run_fold, jobs))


# ---------------------------------------------------------------------------------------------
# The whole run


def run_crossval(settings: CrossvalSettings) -> dict[str, Any]:
    """Train and measure every fold not done yet; the report of all done folds."""
    started = time.perf_counter()
    check_recipe(settings.recipe)
    if settings.student_folds is not None:
        check_student_recipe(settings.recipe, settings.leave_out)
    examples = development_examples(settings.data, settings.limit)
    splits = make_splits(settings, examples)
    wanted = set(settings.only) or set(range(1, len(splits) + 1))
    if not wanted <= set(range(1, len(splits) + 1)):
        raise ValueError(f"--only: folds are numbered 1..{len(splits)}")
    done: dict[int, dict[str, Any]] = {}
    todo: list[FoldJob] = []
    for index, split in enumerate(splits, start=1):
        job = _job(settings, index, split)
        stored = load_done(job.result, job.fingerprint)
        if stored is not None:
            log.info("fold %d: result found in %s, not retrained", index, job.result)
            _warn_missing_noise(stored, settings.snrs)
            done[index] = stored
        elif index in wanted:
            if settings.teacher_folds is not None:
                check_fold_teacher(
                    settings.teacher_folds, job.result.stem, job.split.test, job.recipe
                )
            if settings.student_folds is not None:
                check_fold_student(
                    settings.student_folds / job.result.stem,
                    index,
                    len(splits),
                    settings.salt,
                    job.split.test,
                )
            todo.append(job)
    warm_seconds = 0.0
    if todo:
        log.info("%d examples; training %d of %d folds", len(examples), len(todo), len(splits))
        warm_started = time.perf_counter()
        warm_caches(examples, settings.recipe)
        warm_seconds = time.perf_counter() - warm_started
        for result in run_jobs(todo, settings.jobs):
            done[result["fold"]] = result
    folds = [done[i] for i in sorted(done)]
    return {
        "version": RESULT_VERSION,
        "mode": f"leave-out-{settings.leave_out}" if settings.leave_out else "kfold",
        "folds_total": len(splits),
        "folds_done": len(folds),
        "salt": None if settings.leave_out else settings.salt,
        "limit": settings.limit,
        "examples": _counts(examples),
        "recipe": recipe_dict(settings.recipe),
        "machine": _machine(),
        "jobs": settings.jobs,
        "cache_seconds": round(warm_seconds, 1),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "aggregate": aggregate(folds),
        # The per-example predictions stay in each fold's own JSON (``lgfn compare
        # --crossval`` reads them there); the report keeps the figures.
        "folds": [{k: v for k, v in fold.items() if k != "predictions"} for fold in folds],
    }


def _job(settings: CrossvalSettings, index: int, split: Split) -> FoldJob:
    name = split.name if settings.leave_out else f"fold-{index}"
    recipe = replace(settings.recipe, out=settings.out / name / "model")
    if not recipe.version:
        recipe.version = f"lgfn-crossval-{name}-s{recipe.seed}"
    stated = settings.recipe
    if settings.teacher_folds is not None:
        recipe.teacher = str(settings.teacher_folds / name / "model")
        # The fingerprint names the teachers' run, not one fold's path, so a moved run still
        # resumes (its folder name stays).
        stated = replace(stated, teacher=f"per fold: {settings.teacher_folds.name}")
    if settings.student_folds is not None:
        recipe.student = settings.student_folds / name
        stated = replace(stated, student=Path(f"per fold: {settings.student_folds.name}"))
    return FoldJob(
        index=index,
        split=split,
        recipe=recipe,
        result=settings.out / f"{name}.json",
        fingerprint=fingerprint(stated, split, settings.precision),
        # The averaged run's last epoch is the plain recipe's model of the same training,
        # unless a held rate (--average-rate) took the training off the plain recipe's path.
        last_epoch_fingerprint=(
            fingerprint(replace(stated, average_epochs=0), split, settings.precision)
            if recipe.average_epochs and not recipe.average_rate
            else None
        ),
        snrs=tuple(settings.snrs),
        precision=settings.precision,
        threads=fold_threads(settings),
    )


def _warn_missing_noise(result: dict[str, Any], snrs: Sequence[float]) -> None:
    for snr in snrs:
        if noise_key(snr) not in result:
            log.warning(
                "fold %s was measured without noise at %g dB; delete its JSON to redo it",
                result["fold"],
                snr,
            )


def _counts(examples: Sequence[Example]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for example in examples:
        counts[example.dataset] = counts.get(example.dataset, 0) + 1
    return dict(sorted(counts.items()))


def _machine() -> dict[str, Any]:
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()}


def _cpu_model() -> str:
    from lgfn_model.runtime.device import cpu_model_name

    return cpu_model_name() or platform.machine()
