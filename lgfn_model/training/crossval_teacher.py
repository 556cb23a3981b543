"""`lgfn crossval --teacher-folds RUN`: each fold distils from RUN's model of the same fold.

A teacher that was trained on any of a fold's test songs would leak them into the student, so
RUN's fold must have been tested on exactly this fold's test examples (its JSON lists the ids
it measured), save those no fold can measure and lyrics without audio its code read as no text
(a teacher that could not read a text learnt nothing from it, in any fold).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lgfn_model.training.datasets import Example

if TYPE_CHECKING:
    from lgfn_model.training.train import TrainSettings


def check_fold_teacher(
    run: Path, name: str, test: Sequence[Example], recipe: TrainSettings
) -> None:
    """The teacher of fold ``name`` (``fold-2``), whose test examples are ``test``, must be
    ``run``'s model of the same fold: trained, and tested on exactly these examples (so it
    never saw them)."""
    result_file, model = run / f"{name}.json", run / name / "model"
    if not result_file.is_file() or not model.is_dir():
        raise ValueError(f"--teacher-folds: {run} has no finished {name} ({result_file})")
    stored = json.loads(result_file.read_text())
    tested = stored.get("predictions", {}).get("clean", {}).get("id")
    if tested is None:
        raise ValueError(
            f"--teacher-folds: {result_file} does not list its test examples (measured before "
            "fold results kept their predictions); rerun that fold"
        )
    tested_ids = set(tested)
    # Lyrics-only examples whose text the teacher's code refused (before a text-reading fix)
    # may be missing: it could not learn from them in any fold.
    missing = [e for e in test if e.id not in tested_ids and e.has_audio]
    if not tested_ids <= {e.id for e in test} or _measurable(missing, recipe):
        raise ValueError(
            f"--teacher-folds: {name} of {run} was tested on other examples than this {name} "
            "(other folds, --limit or data); its model may have seen this fold's test songs"
        )


def _measurable(examples: Sequence[Example], recipe: TrainSettings) -> list[Example]:
    """Those of ``examples`` a fold would measure. A fold's predictions leave out the test
    examples it cannot measure (lyrics that read as no text, audio that does not decode), so
    a teacher's fold may list fewer examples than the fold holds, but never a measurable one
    less."""
    if not examples:
        return []
    from lgfn_model.evaluation.predicting import load_clips
    from lgfn_model.training.cache import FeatureCache
    from lgfn_model.training.train import build_config

    cache = FeatureCache(recipe.cache, sample_rate=build_config(recipe).audio.sample_rate)
    return [clip.example for clip in load_clips(examples, cache, recipe.workers)]
