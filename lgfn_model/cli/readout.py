"""`lgfn readout`: add a lyrics read-out to a trained checkpoint (model/lyrics_readout.py)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lgfn_model.cli.arguments import add_readout_weight

DESCRIPTION = """\
Fit a linear read-out of the whole lyrics' vector (one logistic regression per label: the
four moods, the sign of valence, the sign of arousal) on the examples CHECKPOINT was trained
on, found again in --data from its metadata, and save the model with it to --out. Its votes
are added to the network's log-odds for every track with lyrics; the network's weights are
copied untouched. Needs a model trained with song_text (the default recipe). Cross-validated
effect and the defaults' origin: docs/cross-validation.md.
"""


def register(sub: argparse._SubParsersAction) -> None:
    from lgfn_model.training.lyrics_readout_fit import FUSION, STRENGTH

    parser = sub.add_parser(
        "readout",
        help="add a lyrics read-out to a trained checkpoint",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", required=True, help="the data root the checkpoint trained on")
    parser.add_argument("--checkpoint", required=True, help="checkpoint folder or shipped name")
    parser.add_argument("--out", required=True, help="folder for the new checkpoint")
    add_readout_weight(parser)
    parser.add_argument(
        "--strength",
        type=float,
        default=STRENGTH,
        help=f"inverse L2 penalty of each regression (default {STRENGTH:g})",
    )
    parser.add_argument(
        "--fusion",
        type=float,
        nargs=3,
        default=list(FUSION),
        metavar=("MOOD", "VALENCE", "AROUSAL"),
        help="how much each vote weighs against the network's (default "
        + " ".join(f"{w:g}" for w in FUSION)
        + ")",
    )
    parser.add_argument("--version", default=None, help="the new model's version string")
    parser.add_argument("--cache", help="feature cache folder (default ~/.cache/beets-lgfn)")
    parser.set_defaults(handler=run_readout)


def run_readout(args: argparse.Namespace) -> int:
    import logging

    from lgfn_model.training.cache import FeatureCache
    from lgfn_model.training.readout_checkpoint import readout_onto_checkpoint

    logging.basicConfig(level=logging.INFO, format="lgfn: %(message)s", stream=sys.stderr)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        print(f"lgfn: {out} is not empty; give a new folder", file=sys.stderr)
        return 2
    try:
        model, metadata = readout_onto_checkpoint(
            args.checkpoint,
            Path(args.data),
            out,
            FeatureCache(Path(args.cache) if args.cache else None),
            dict(args.readout_weight),
            args.strength,
            args.fusion,
            args.version,
        )
    except ValueError as error:
        print(f"lgfn: {args.checkpoint}: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    described = json.dumps(metadata["lyrics_readout"], sort_keys=True)
    print(f"{model.config.version}: lyrics read-out {described}, saved to {out}")
    return 0
