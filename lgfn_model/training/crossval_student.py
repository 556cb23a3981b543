"""Students distilled per cross-validation fold (`lgfn distill --fold N`, `lgfn crossval
--student-folds DIR`).

The shipped student was distilled, without labels, on the held-out split's training audio,
which holds most of every cross-validation test fold: a fold built on it has heard its test
songs (not their labels). A student distilled on fold N's training part only has not. The
student records which fold it was distilled for (``crossval`` in its ``config.json``
metadata: the fold, K, the fold salt and a digest of the fold's test examples), and
`lgfn crossval --student-folds DIR` uses ``DIR/fold-N`` for fold N only if that record
matches the fold it is about to train.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lgfn_model.pretrained.student import CONFIG_FILE
from lgfn_model.training.datasets import Example

if TYPE_CHECKING:
    from lgfn_model.training.train import TrainSettings


def examples_digest(test: Sequence[Example]) -> str:
    """A short digest of a fold's test examples: equal digests, equal test folds."""
    ids = "\n".join(sorted(e.id for e in test))
    return hashlib.sha256(ids.encode("utf-8")).hexdigest()[:16]


def fold_record(fold: int, folds: int, salt: str, test: Sequence[Example]) -> dict[str, Any]:
    """What a per-fold student stores about the fold whose training audio it heard."""
    return {"fold": fold, "folds": folds, "salt": salt, "test_digest": examples_digest(test)}


def check_student_recipe(recipe: TrainSettings, leave_out: str | None) -> None:
    """--student-folds fits K folds of a "musicnn-student" recipe that names no --student."""
    from lgfn_model.training.train import build_config

    if leave_out is not None or recipe.student is not None:
        raise ValueError("--student-folds needs K folds (no --leave-out) and no --student")
    if build_config(recipe).pretrained_audio != "musicnn-student":
        raise ValueError('--student-folds needs a recipe with pretrained_audio="musicnn-student"')


def check_fold_student(
    folder: Path, fold: int, folds: int, salt: str, test: Sequence[Example]
) -> None:
    """The student in ``folder`` must have been distilled for fold ``fold`` of ``folds`` (with
    the same fold salt and test examples): else it may have heard this fold's test songs."""
    config = folder / CONFIG_FILE
    try:
        document = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        message = f"--student-folds: {folder} holds no distilled student ({error})"
        raise ValueError(message) from None
    record = document.get("metadata", {}).get("crossval")
    if record is None:
        raise ValueError(
            f"--student-folds: {folder} was not distilled for a cross-validation fold "
            f"(distil it with `lgfn distill --fold {fold} --folds {folds}`)"
        )
    expected = fold_record(fold, folds, salt, test)
    if record != expected:
        raise ValueError(
            f"--student-folds: {folder} was distilled for fold {record.get('fold')} of "
            f"{record.get('folds')} (test digest {record.get('test_digest')}), not for fold "
            f"{fold} of {folds} of this data (test digest {expected['test_digest']}); it may "
            "have heard this fold's test songs"
        )
