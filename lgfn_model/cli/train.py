"""`lgfn train`, `lgfn evaluate` and `lgfn crossval` (registered into the `lgfn` command)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from lgfn_model.cli.arguments import (
    add_readout_weight,
    config_overrides,
    dataset_weight_pair,
    int_list,
    oversample_pair,
    positive_int,
)
from lgfn_model.cli.common import UsageError, add_training_options, setup_training
from lgfn_model.model.config import PRECISIONS
from lgfn_model.training.train import ABLATIONS
from lgfn_model.training.weight_averaging import check_average_epochs

if TYPE_CHECKING:
    from lgfn_model.training.train import TrainSettings


def register(sub: argparse._SubParsersAction) -> None:

    train = sub.add_parser(
        "train",
        help="train an LGFN model from labelled data",
        description="Train from scratch on a data root (4q/, mirex/, nju/, manifest.csv) or a "
        "manifest CSV. Deterministic for a given --seed on a given device.",
    )
    train.add_argument("--data", required=True, help="data root or manifest CSV")
    train.add_argument("--out", required=True, help="checkpoint folder to write")
    train.add_argument(
        "--split",
        default="heldout",
        choices=["heldout", "cross-dataset", "all"],
        help="which examples to train on: the held-out split's train part (default), "
        "4Q + NJU only (cross-dataset check), or all: every development example, "
        "MoodyLyrics4Q included, none held out (a model to ship once `lgfn crossval` has "
        "chosen its recipe)",
    )
    add_recipe_arguments(train)
    train.add_argument(
        "--evaluate", action="store_true", help="evaluate on the split's test part after training"
    )
    add_training_options(train)
    train.set_defaults(handler=run_train)

    evaluate = sub.add_parser(
        "evaluate",
        help="measure a checkpoint on the held-out split",
        description="Mood accuracy / macro-F1 / per-class F1 / confusion, valence and arousal "
        "accuracy and ROC-AUC, per subset (with and without lyrics). The clips go through the "
        "predictor users run, their audio decoded once into the feature cache.",
    )
    evaluate.add_argument("--data", required=True, help="data root or manifest CSV")
    evaluate.add_argument(
        "--checkpoint", help="checkpoint folder or shipped model (default, musicnn)"
    )
    evaluate.add_argument("--split", default="heldout", choices=["heldout", "cross-dataset"])
    evaluate.add_argument(
        "--snr", type=float, nargs="*", default=[], help="also with white noise at these dB SNR"
    )
    evaluate.add_argument("--seed", type=int, default=0, help="noise seed")
    evaluate.add_argument("--json", help="write all figures to this JSON file")
    evaluate.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="the predictor's precision (default auto: bf16 on a GPU or a CPU with AMX or "
        "AVX512-BF16, else fp32 with the lyrics encoder in int8)",
    )
    add_training_options(evaluate)
    evaluate.set_defaults(handler=run_evaluate)

    distill = sub.add_parser(
        "distill",
        help="train the compact musicnn student (the fast pretrained audio branch)",
        description="Distil musicnn's MSD tagger into the compact student CNN on the audio of "
        "the held-out split's training part (or, with --fold N, of cross-validation fold N's), "
        "with noise and clipping on the student's input.",
    )
    distill.add_argument("--data", required=True, help="data root")
    distill.add_argument("--out", required=True, help="folder to write the student's weights to")
    distill.add_argument("--epochs", type=int, default=12)
    distill.add_argument("--seed", type=int, default=0)
    distill.add_argument(
        "--windows-per-clip", type=int, default=4, help="random 9 s windows of each clip per epoch"
    )
    distill.add_argument(
        "--channels",
        type=int_list,
        default=None,
        help="the student's stage widths, comma-separated (default 16,32,64,128,256)",
    )
    distill.add_argument(
        "--hidden", type=int, default=None, help="width of the student's MLP head (default 256)"
    )
    distill.add_argument(
        "--bf16",
        action="store_true",
        help="run the student under bf16 autocast (about 2x faster on AMX CPUs and GPUs)",
    )
    distill.add_argument(
        "--task-weight",
        type=float,
        default=0.0,
        help="extra weight on the error along the directions of musicnn's features that "
        "predict the training labels (moods, valence, arousal); default 0: plain MSE",
    )
    distill.add_argument(
        "--mix-copies",
        type=int,
        default=2,
        help="also train on this many copies of the clips, each mixed with another clip, "
        "with musicnn's features of the mix as targets (default 2, as the shipped student; "
        "0 and 4 lost by cross-validation)",
    )
    distill.add_argument(
        "--fold",
        type=int,
        help="distil on the training part of this cross-validation fold (1-based, the folds of "
        "`lgfn crossval --folds K`), for `lgfn crossval --student-folds`; default: the held-out "
        "split's",
    )
    distill.add_argument(
        "--folds", type=int, default=5, help="K, with --fold (default %(default)s)"
    )
    add_training_options(distill)
    distill.set_defaults(handler=run_distill)


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """The training recipe's options (what :func:`recipe_settings` reads), shared by
    `lgfn train` and `lgfn crossval` so that both train by exactly the same recipe."""
    parser.add_argument("--ablation", default="full", choices=sorted(ABLATIONS))
    parser.add_argument(
        "--label-fraction", type=float, default=1.0, help="keep labels on this share (0.3)"
    )
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument(
        "--bf16",
        action="store_true",
        help="run the forward passes under bf16 autocast on the CPU too (a GPU always does): "
        "for CPUs with AVX512-BF16 or AMX; a recipe option, so compare it with runs trained "
        "the same way",
    )
    parser.add_argument(
        "--clip-chance",
        type=float,
        default=0.0,
        help="share of training windows made 6-12 dB louder and hard-clipped (default 0)",
    )
    parser.add_argument(
        "--clean-student",
        action="store_true",
        help='"musicnn-student" models: the student reads each window before noise and '
        "clipping, as the default model's cached musicnn features do",
    )
    parser.add_argument(
        "--pretrained-noise",
        type=float,
        nargs="+",
        default=[],
        metavar="DB",
        help="also cache the frozen pretrained branch's features of noisy copies of each clip "
        "at these SNRs (e.g. 0 10 20); a noisy training window then takes one of these SNRs "
        "and the matching features (default: clean features only)",
    )
    parser.add_argument(
        "--oversample",
        action="append",
        default=[],
        type=oversample_pair,
        metavar="DATASET=N",
        help="each epoch sees this dataset's training examples N times (repeatable; e.g. "
        "mirex=2: the real songs with lyrics count twice)",
    )
    parser.add_argument(
        "--dataset-weight",
        action="append",
        default=[],
        type=dataset_weight_pair,
        metavar="DATASET=W",
        help="scale every loss of this dataset's examples (labels and teacher) by W > 0 "
        "(repeatable; e.g. nju=0.1: the lyrics-only NJU songs shape the model a tenth as much)",
    )
    parser.add_argument(
        "--pair-lyrics",
        type=float,
        default=0.0,
        metavar="CHANCE",
        help="the chance that a training clip with a mood and no lyrics reads the lyrics of a "
        "lyrics-only training example of the same mood (NJU, MoodyLyrics4Q) instead, untimed "
        "(default 0: off)",
    )
    parser.add_argument(
        "--mood-mask",
        action="store_true",
        help="the mood loss of each example runs over the moods its dataset names (MIREX-like: "
        "happy, angry, sad), so a dataset that never says relaxed does not teach 'not relaxed'",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a model config value (JSON value), e.g. --set branch_dropout=0.5",
    )
    parser.add_argument(
        "--teacher",
        help="distil from this trained checkpoint (path, or a shipped model: musicnn, the "
        "default model's teacher): the model also learns to match the teacher's outputs "
        "on every training window",
    )
    parser.add_argument(
        "--teacher-weight", type=float, default=1.0, help="weight of the teacher's loss"
    )
    parser.add_argument(
        "--teacher-temperature", type=float, default=2.0, help="softmax temperature (default 2)"
    )
    parser.add_argument(
        "--student",
        help='with --set pretrained_audio="musicnn-student": start from the distilled student '
        "in this folder (written by `lgfn distill --out`) instead of the shipped one",
    )
    parser.add_argument(
        "--init",
        help="start from this trained checkpoint's weights (path, or a shipped model: default, "
        "musicnn) instead of random ones; a model with the distilled student started from "
        "the musicnn model gets its musicnn projection on the student's",
    )
    parser.add_argument(
        "--train-only",
        action="append",
        default=[],
        metavar="MODULE",
        help="train only this part of the model (repeatable; e.g. distilled, mood_head); the "
        "rest stays as it started, with --init as the trained checkpoint's",
    )
    parser.add_argument(
        "--average-epochs",
        type=positive_int,
        default=0,
        metavar="N",
        help="save the mean of the weights at the end of the last N epochs (stochastic weight "
        "averaging) and the last epoch's own weights in OUT/last-epoch (default: the last "
        "epoch's weights)",
    )
    parser.add_argument(
        "--average-rate",
        type=float,
        default=0.0,
        metavar="F",
        help="with --average-epochs: anneal only to F times the peak learning rate before the "
        "averaged epochs and hold it over them (stochastic weight averaging proper; batch-norm "
        "statistics recomputed for the average). Default 0: the anneal runs through them",
    )
    parser.add_argument(
        "--lyrics-readout",
        action="store_true",
        help="after training, fit a linear read-out of the whole lyrics' vector on the "
        "training examples and add its votes to the model's (as `lgfn readout`; needs "
        "song_text)",
    )
    add_readout_weight(parser, "with --lyrics-readout: ")
    parser.add_argument(
        "--version",
        default="",
        help="model version string to store (default: lgfn-ABLATION-sSEED-YYYYMMDD-HHMMSS, "
        "the UTC time training started, so no two runs share one)",
    )


def run_train(args: argparse.Namespace) -> int:
    from lgfn_model.evaluation.evaluate import run_evaluation
    from lgfn_model.training.train import train

    if args.evaluate and args.split == "all":
        print(
            "lgfn: --split all holds nothing out, so there is nothing to --evaluate on; "
            "measure the recipe with lgfn crossval",
            file=sys.stderr,
        )
        return 2
    setup_training(args)
    settings = recipe_settings(args, Path(args.data), Path(args.out))
    settings.split = args.split
    settings.version = args.version or run_version(args.ablation, args.seed)
    _, metadata = train(settings)
    print(f"lgfn: wrote {settings.out} ({metadata['train_seconds']:.0f} s)", file=sys.stderr)
    if args.evaluate:
        text, _ = run_evaluation(
            settings.data, settings.out, args.split, cache_dir=settings.cache, device=args.device
        )
        print(text)
    return 0


def run_version(ablation: str, seed: int, now: datetime | None = None) -> str:
    """The version `lgfn train` stores when none is given: one per run. The plugin knows a
    model by its version alone (tracks analysed by the same version are skipped, a learnt head
    belongs to its base model's version), so two models trained with the same options must
    not share one."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return f"lgfn-{ablation}-s{seed}-{stamp}"


def recipe_settings(args: argparse.Namespace, data: Path, out: Path) -> TrainSettings:
    """The TrainSettings of the recipe options (:func:`add_recipe_arguments`) and the common
    ones (--cache, --device, --workers) of ``args``."""
    from lgfn_model.training.train import TrainSettings

    if args.average_rate and not args.average_epochs:
        raise UsageError("--average-rate needs --average-epochs (which epochs to average)")
    if args.readout_weight and not args.lyrics_readout:
        raise UsageError("--readout-weight weighs the fit of --lyrics-readout; give that too")
    if args.average_epochs:
        try:  # refused now, not after the caches are filled
            check_average_epochs(args.average_epochs, args.epochs, args.average_rate)
        except ValueError as error:
            raise UsageError(str(error)) from None
    return TrainSettings(
        data=data,
        out=out,
        cache=Path(args.cache) if args.cache else None,
        ablation=args.ablation,
        label_fraction=args.label_fraction,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        weight_decay=args.weight_decay,
        clip_chance=args.clip_chance,
        clean_student=args.clean_student,
        pretrained_noise=tuple(dict.fromkeys(args.pretrained_noise)),
        oversample=dict(args.oversample),
        dataset_weights=dict(args.dataset_weight),
        pair_lyrics=args.pair_lyrics,
        mood_mask=args.mood_mask,
        teacher=args.teacher,
        teacher_weight=args.teacher_weight,
        teacher_temperature=args.teacher_temperature,
        student=Path(args.student) if args.student else None,
        init=args.init,
        train_only=tuple(args.train_only),
        average_epochs=args.average_epochs,
        average_rate=args.average_rate,
        lyrics_readout=args.lyrics_readout,
        readout_weights=dict(args.readout_weight),
        config_overrides=config_overrides(args.set),
        seed=args.seed,
        device=args.device,
        bf16=args.bf16,
        workers=args.workers,
        version=args.version,
    )


def run_distill(args: argparse.Namespace) -> int:
    from lgfn_model.pretrained.student import StudentConfig
    from lgfn_model.training.distill import DistillSettings, distill

    setup_training(args)
    settings = DistillSettings(
        data=Path(args.data),
        out=Path(args.out),
        cache=Path(args.cache) if args.cache else None,
        epochs=args.epochs,
        seed=args.seed,
        workers=args.workers,
        device=args.device,
        windows_per_clip=args.windows_per_clip,
        architecture=StudentConfig(
            channels=tuple(args.channels or StudentConfig.channels),
            hidden=args.hidden or StudentConfig.hidden,
        ),
        bf16=args.bf16,
        task_weight=args.task_weight,
        mix_copies=args.mix_copies,
        fold=args.fold,
        folds=args.folds,
    )
    try:
        metadata = distill(settings)
    except ValueError as error:  # a bad --fold, unreadable data: no traceback
        print(f"lgfn distill: {error}", file=sys.stderr)
        return 2
    print(json.dumps(metadata, indent=2))
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from lgfn_model.evaluation.evaluate import run_evaluation

    setup_training(args)
    text, report = run_evaluation(
        Path(args.data),
        Path(args.checkpoint) if args.checkpoint else None,
        args.split,
        snrs=args.snr,
        cache_dir=Path(args.cache) if args.cache else None,
        device=args.device,
        workers=args.workers,
        seed=args.seed,
        precision=args.precision,
        threads=args.threads,
    )
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0
