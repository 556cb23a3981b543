"""What the ``lgfn`` subcommands share: the predictor's options and loading, the training
commands' options, and the usage error that argparse reports."""

from __future__ import annotations

import argparse
import logging
import sys

from lgfn_model.model.config import PRECISIONS


class UsageError(Exception):
    pass


def add_predictor_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint", help="checkpoint folder or shipped model (default, musicnn)"
    )
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, ...")
    parser.add_argument("--batch-size", type=int, default=32, help="analysis windows per batch")
    parser.add_argument(
        "--workers", type=int, default=None, help="audio decoding processes (0: decode inline)"
    )
    parser.add_argument(
        "--threads",
        type=threads_option,
        default=None,
        help="CPU threads for the model: auto (default: the cores not busy elsewhere, less "
        "half a core per decoding worker) or a number; OMP_NUM_THREADS, when set, is the auto",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="compute dtype of the heavy layers: auto (default: bf16 on a GPU or a CPU with "
        "AMX or AVX512-BF16, else fp32), fp32, bf16",
    )


def threads_option(value: str) -> int | None:
    from lgfn_model.runtime.threads import ThreadsError, parse_threads

    try:
        return parse_threads(value)
    except ThreadsError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("threads ")) from None


def load_predictor(args: argparse.Namespace):  # noqa: ANN201 - lazy import keeps --help fast
    from lgfn_model.runtime.predictor import Predictor

    return Predictor.load(
        args.checkpoint,
        device=args.device,
        batch_size=args.batch_size,
        workers=args.workers,
        precision=args.precision,
        threads=args.threads,
    )


def add_training_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache", help="feature cache folder (default ~/.cache/beets-lgfn)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=2, help="audio decoding processes")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def setup_training(args: argparse.Namespace) -> None:
    import torch

    logging.basicConfig(level=logging.INFO, format="lgfn: %(message)s", stream=sys.stderr)
    if args.threads:
        torch.set_num_threads(args.threads)
    warn_emulated_bf16(args)


def warn_emulated_bf16(args: argparse.Namespace) -> None:
    """--bf16 pays only where the CPU has bf16 in hardware; elsewhere it is emulated, slower."""
    from lgfn_model.runtime.device import DeviceError, has_hardware_bf16, resolve_device

    if not getattr(args, "bf16", False) or has_hardware_bf16():
        return
    try:
        device = resolve_device(getattr(args, "device", "auto"))
    except DeviceError:
        return  # the command itself reports a device it cannot use
    if device.type == "cpu":
        logging.getLogger("lgfn_model").warning(
            "--bf16 on a CPU without hardware bf16 (AMX or AVX512-BF16): emulated here, several "
            "times slower than float32 (7-8x on an AMD Zen 3); leave it off"
        )
