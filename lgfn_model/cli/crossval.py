"""`lgfn crossval`: the command line over :mod:`lgfn_model.training.crossval`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import lgfn_model.training.crossval as crossval_module
from lgfn_model.evaluation.crossval_report import format_table
from lgfn_model.training.crossval import (
    LEAVE_OUT_CHOICES,
    CrossvalSettings,
    run_crossval,
)
from lgfn_model.training.crossval_fold import write_json


def register(sub: argparse._SubParsersAction) -> None:
    from lgfn_model.cli.common import add_training_options
    from lgfn_model.cli.train import add_recipe_arguments
    from lgfn_model.model.config import PRECISIONS

    parser = sub.add_parser(
        "crossval",
        help="grouped, stratified K-fold cross-validation of a training recipe",
        description=crossval_module.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", required=True, help="data root (4q/, mirex/, nju/, ...)")
    parser.add_argument("--folds", type=int, default=5, help="K (default 5)")
    parser.add_argument(
        "--leave-out",
        choices=LEAVE_OUT_CHOICES,
        help="instead of K folds: train on every other dataset, test on all of this one",
    )
    add_recipe_arguments(parser)
    parser.add_argument(
        "--jobs", type=int, default=1, help="folds trained side by side (processes; default 1)"
    )
    parser.add_argument(
        "--out",
        default="runs/crossval",
        help="folder of the fold checkpoints and results (a rerun resumes; default %(default)s)",
    )
    parser.add_argument("--json", help="write the report here (default OUT/crossval.json)")
    parser.add_argument("--limit", type=int, help="at most N examples of each dataset (smoke runs)")
    parser.add_argument(
        "--only", type=int, nargs="+", default=[], metavar="FOLD", help="train only these folds"
    )
    parser.add_argument(
        "--snr",
        type=float,
        nargs="*",
        default=[],
        help="also measure the audio sets with white noise at these dB SNR (e.g. 0)",
    )
    parser.add_argument("--precision", choices=PRECISIONS, default="auto")
    parser.add_argument(
        "--teacher-folds",
        metavar="RUN",
        help="distil each fold from RUN's model of the same fold (RUN: the --out of another "
        "crossval over the same folds, e.g. the musicnn recipe's), as --teacher does in "
        "`lgfn train`; --teacher-weight and --teacher-temperature apply",
    )
    parser.add_argument(
        "--student-folds",
        metavar="DIR",
        help='"musicnn-student" recipes: start fold N from the student in DIR/fold-N, '
        "distilled on that fold's training audio only (`lgfn distill --fold N --folds K "
        "--out DIR/fold-N`), instead of the shipped student, which heard most test folds",
    )
    add_training_options(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from lgfn_model.cli.common import setup_training
    from lgfn_model.cli.train import recipe_settings

    setup_training(args)
    if args.jobs < 1:
        raise SystemExit("lgfn crossval: --jobs must be at least 1")
    out = Path(args.out)
    settings = CrossvalSettings(
        data=Path(args.data),
        recipe=recipe_settings(args, Path(args.data), out),
        out=out,
        folds=args.folds,
        leave_out=args.leave_out,
        jobs=args.jobs,
        threads=args.threads,
        limit=args.limit,
        only=tuple(args.only),
        snrs=tuple(args.snr),
        precision=args.precision,
        teacher_folds=Path(args.teacher_folds) if args.teacher_folds else None,
        student_folds=Path(args.student_folds) if args.student_folds else None,
    )
    try:
        report = run_crossval(settings)
    except ValueError as error:  # DataError, bad folds, a foreign result in --out: no traceback
        print(f"lgfn crossval: {error}", file=sys.stderr)
        return 2
    target = Path(args.json) if args.json else out / "crossval.json"
    write_json(target, report)
    print(format_table(report))
    print(f"lgfn: wrote {target}", file=sys.stderr)
    return 0
