"""`lgfn robustness`: the command line over :mod:`lgfn_model.evaluation.robustness`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import lgfn_model.evaluation.robustness as robustness_module
from lgfn_model.evaluation.robustness import VARIANTS, run_robustness


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "robustness",
        help="mood agreement on held-out clips re-encoded as MP3 and at +-6 dB",
        description=robustness_module.__doc__,
    )
    parser.add_argument("--data", required=True, help="data root")
    parser.add_argument(
        "--checkpoint", help="checkpoint folder or shipped model (default, musicnn)"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--limit", type=int, default=None, help="only the first N clips")
    parser.add_argument("--json", help="write the report to this JSON file")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    report = run_robustness(
        Path(args.data),
        Path(args.checkpoint) if args.checkpoint else None,
        device=args.device,
        workers=args.workers,
        limit=args.limit,
    )
    print(f"model {report['model']}: {report['clips']} held-out clips with audio")
    for name in VARIANTS:
        part = report[name]
        value = "-" if part["agreement"] is None else f"{part['agreement']:.3f}"
        print(f"  {name:<18} mood agreement with the original: {value} (n={part['n']})")
    for error in report["errors"]:
        print(f"  failed: {error}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0
