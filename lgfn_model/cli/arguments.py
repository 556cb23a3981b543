"""Argument types of the training commands: argparse shows their errors as usage errors."""

from __future__ import annotations

import argparse
import json
from typing import Any


def positive_int(text: str) -> int:
    """``"3"`` -> 3; zero, negatives and non-integers are refused."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def int_list(text: str) -> list[int]:
    """``"1,3"`` -> [1, 3]: positive integers, comma-separated."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        message = f"expected comma-separated integers, got {text!r}"
        raise argparse.ArgumentTypeError(message) from error
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _dataset_value(
    text: str, convert: type, example: str, rule: str, valid: Any
) -> tuple[str, Any]:
    """``"NAME=VALUE"`` -> ``(NAME, convert(VALUE))``, refused with a usage error unless the
    value converts and ``valid(value)``; ``example`` and ``rule`` word the message."""
    name, _, raw = text.partition("=")
    try:
        value = convert(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected {example}") from None
    if not name.strip() or not valid(value):
        raise argparse.ArgumentTypeError(f"{text!r}: expected {rule}")
    return name.strip(), value


def oversample_pair(text: str) -> tuple[str, int]:
    """``"mirex=2"`` -> ``("mirex", 2)``; argparse shows the error as a usage error."""
    return _dataset_value(
        text, int, "DATASET=N, e.g. mirex=2", "DATASET=N with N at least 1", lambda n: n >= 1
    )


def dataset_weight_pair(text: str) -> tuple[str, float]:
    """``"nju=0.1"`` -> ``("nju", 0.1)``; argparse shows the error as a usage error."""
    return _dataset_value(
        text, float, "DATASET=W, e.g. nju=0.1", "DATASET=W with W above 0", lambda w: w > 0
    )


def add_readout_weight(parser: argparse.ArgumentParser, when: str = "") -> None:
    """``--readout-weight DATASET=W`` (repeatable): how much a dataset's examples weigh in the
    fit of a lyrics read-out (``lgfn readout``, ``--lyrics-readout``)."""
    parser.add_argument(
        "--readout-weight",
        action="append",
        default=[],
        type=dataset_weight_pair,
        metavar="DATASET=W",
        help=f"{when}weigh this dataset's examples by W in the lyrics read-out's fit "
        "(repeatable; the default recipe's: nju=0.1 moodylyrics=0.1, the lyrics-only sets a "
        "tenth)",
    )


def config_overrides(pairs: list[str]) -> dict[str, object]:
    """``--set KEY=VALUE`` pairs -> {KEY: VALUE}; VALUE is read as JSON, else kept as text."""
    values: dict[str, object] = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        try:
            values[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            values[key.strip()] = raw
    return values
