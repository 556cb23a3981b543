"""The examples a checkpoint was trained on, found again from its metadata and the data.

What is fitted after training (the lyrics read-out, `lgfn readout`) must see the examples
the network saw and no others: a read-out fitted on a held-out clip would leak it into every
later measurement. A checkpoint records its split's name (``trained_on``: ``heldout``,
``all``, ``cross-dataset``, ``fold2of5``, ``leave-out-mirex``) and description; the split is
dealt again from the same data by the same code, and its description must match the
recorded one (a different salt, or data with other songs, would deal other examples).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lgfn_model.training.datasets import Example

FOLD_NAME = re.compile(r"fold(\d+)of(\d+)")


def trained_examples(metadata: Mapping[str, Any], data: Path) -> list[Example]:
    """The labelled training examples of the checkpoint whose ``metadata`` this is, dealt
    from ``data``; ValueError (one line) when the split cannot be found again."""
    from lgfn_model.training.crossval import development_examples
    from lgfn_model.training.splits import Split, kfold_splits, leave_out_split
    from lgfn_model.training.train import TrainSettings, prepare_split

    name = metadata.get("trained_on")
    if not isinstance(name, str) or not name:
        raise ValueError("the checkpoint does not record which split it was trained on")
    if metadata.get("label_fraction", 1.0) not in (None, 1.0):
        raise ValueError(
            f"the checkpoint was trained on {metadata['label_fraction']:g} of the split's "
            "labels: that subset is not dealt again here"
        )
    fold = FOLD_NAME.fullmatch(name)
    split: Split
    if fold is not None:
        index, count = int(fold.group(1)), int(fold.group(2))
        split = kfold_splits(development_examples(data), count)[index - 1]
    elif name.startswith("leave-out-"):
        split = leave_out_split(development_examples(data), name.removeprefix("leave-out-"))
    else:
        split = prepare_split(TrainSettings(data=data, out=Path("."), split=name))
    recorded = metadata.get("split_description")
    if recorded is not None and recorded != split.description:
        raise ValueError(
            f"split {name} dealt from {data} is not the one the checkpoint records "
            f"({split.description!r} against {recorded!r})"
        )
    return [e for e in split.train if e.labelled]
