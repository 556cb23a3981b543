"""The ``lgfn`` command: one subcommand per module of this package, each with ``register(sub)``."""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

# Subcommands that live in their own modules register themselves through ``register(sub)``;
# a module missing from this list simply has no subcommand yet.
COMMAND_MODULES = (
    "lgfn_model.cli.predict",
    "lgfn_model.cli.train",
    "lgfn_model.cli.readout",
    "lgfn_model.cli.robustness",
    "lgfn_model.cli.compare",
    "lgfn_model.cli.crossval",
    "lgfn_model.cli.bench",
    "lgfn_model.cli.explain",
    "lgfn_model.cli.example",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lgfn", description="LGFN music mood recognition from audio and lyrics."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMAND_MODULES:
        try:
            module = import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name is not None and module_name.startswith(error.name):
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from lgfn_model.cli.common import UsageError
    from lgfn_model.runtime.checkpoint import CheckpointError
    from lgfn_model.runtime.device import DeviceError

    try:
        return int(args.handler(args) or 0)
    except UsageError as error:
        parser.error(str(error))
    except (CheckpointError, DeviceError) as error:
        print(f"lgfn: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lgfn: interrupted", file=sys.stderr)
        return 130
    return 0
