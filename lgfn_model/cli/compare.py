"""`lgfn compare`: the command line over :mod:`lgfn_model.evaluation.compare`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import lgfn_model.evaluation.compare as compare_module
from lgfn_model.evaluation.compare import format_comparison, run_comparison
from lgfn_model.model.config import PRECISIONS


def register(sub: argparse._SubParsersAction) -> None:
    from lgfn_model.cli.common import add_training_options

    parser = sub.add_parser(
        "compare",
        help="two checkpoints on the same held-out clips, with paired statistics",
        description=compare_module.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", required=True, help="data root or manifest CSV")
    parser.add_argument("a", help="first checkpoint folder or shipped model (default, musicnn)")
    parser.add_argument("b", help="second checkpoint folder or shipped model")
    parser.add_argument("--split", default="heldout", choices=["heldout", "cross-dataset"])
    parser.add_argument("--precision", choices=PRECISIONS, default="auto")
    parser.add_argument("--samples", type=int, default=10_000, help="bootstrap resamples")
    parser.add_argument("--json", help="write the figures to this JSON file")
    parser.add_argument(
        "--crossval",
        action="store_true",
        help="A and B are `lgfn crossval --out` folders run over the same folds: pair their "
        "test predictions example by example, per dataset, clean and at each --snr they were "
        "measured with (no model is run)",
    )
    parser.add_argument(
        "--by-label",
        action="store_true",
        help="with --crossval: split each dataset by the source's own label (MIREX cluster, "
        "4Q quadrant, NJU and MoodyLyrics4Q mood), to see where two recipes differ",
    )
    for side in ("a", "b"):
        parser.add_argument(
            f"--also-{side}",
            action="append",
            default=[],
            metavar="RUN",
            help=f"with --crossval: another training of recipe {side.upper()} over the same "
            "folds (e.g. another --seed); repeatable. Each recipe is then the mean of its "
            "trainings and a second interval counts their luck",
        )
    add_training_options(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from lgfn_model.cli.common import setup_training

    setup_training(args)
    if args.by_label and not args.crossval:
        print("lgfn compare: --by-label needs --crossval (two crossval runs)", file=sys.stderr)
        return 2
    if (args.also_a or args.also_b) and not args.crossval:
        print("lgfn compare: --also-a / --also-b need --crossval (crossval runs)", file=sys.stderr)
        return 2
    if args.crossval:
        return _run_crossval(args)
    report = run_comparison(
        Path(args.data),
        args.a,
        args.b,
        split_name=args.split,
        cache_dir=Path(args.cache) if args.cache else None,
        device=args.device,
        workers=args.workers,
        precision=args.precision,
        samples=args.samples,
        threads=args.threads,
    )
    print(format_comparison(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _run_crossval(args: argparse.Namespace) -> int:
    from lgfn_model.evaluation.crossval_compare import compare_crossval, format_crossval_comparison
    from lgfn_model.model.config import MOODS
    from lgfn_model.training.crossval import development_examples

    try:
        report = compare_crossval(
            Path(args.a),
            Path(args.b),
            development_examples(Path(args.data)),
            MOODS,
            samples=args.samples,
            by_label=args.by_label,
            more_a=[Path(run) for run in args.also_a],
            more_b=[Path(run) for run in args.also_b],
        )
    except (OSError, ValueError) as error:  # a missing folder, unpaired folds, bad data
        print(f"lgfn compare: {error}", file=sys.stderr)
        return 2
    print(format_crossval_comparison(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0
