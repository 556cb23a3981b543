"""tools.crossval_words: a crossval run's fold models heard with and without the lyrics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from crossval_factory import make_crossval_data, tiny_recipe

from lgfn_model.training.crossval import CrossvalSettings, development_examples, run_crossval
from tools import crossval_words


@pytest.fixture(scope="module")
def crossval_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A tiny 2-fold crossval run: (data root, run folder, feature cache)."""
    base = tmp_path_factory.mktemp("words")
    data = make_crossval_data(base / "data")
    cache = base / "cache"
    run = base / "cv"
    run_crossval(
        CrossvalSettings(data=data, recipe=tiny_recipe(data, cache), out=run, folds=2, jobs=1)
    )
    return data, run, cache


def _clean(path: Path) -> dict:
    return json.loads(path.read_text())["predictions"]["clean"]


def test_crossval_keeps_each_clips_audio_gate(crossval_run) -> None:
    data, run, _ = crossval_run
    by_id = {e.id: e for e in development_examples(data)}
    clean = _clean(run / "fold-1.json")
    assert len(clean["gate"]) == len(clean["id"])
    for example_id, gate in zip(clean["id"], clean["gate"], strict=True):
        example = by_id[example_id]
        if example.has_audio and example.lyrics is None:
            assert gate == 1.0  # audio alone: the gate passes the audio through
        elif not example.has_audio:
            assert gate == 0.0  # lyrics alone
        else:
            assert 0.0 < gate < 1.0  # a clip with both weighs them


def test_each_fold_is_heard_twice_and_only_the_words_differ(crossval_run, tmp_path, capsys) -> None:
    data, run, cache = crossval_run
    out = tmp_path / "words"
    code = crossval_words.main(
        ["--data", str(data), "--run", str(run), "--out", str(out), "--cache", str(cache)]
    )
    assert code == 0
    by_id = {e.id: e for e in development_examples(data)}
    for fold in ("fold-1", "fold-2"):
        with_words = _clean(out / "with-words" / f"{fold}.json")
        without = _clean(out / "without-words" / f"{fold}.json")
        assert with_words["id"] == without["id"] and with_words["id"]
        # Only the fold's own test clips that have audio and lyrics (the MIREX-like ones here).
        tested = set(_clean(run / f"{fold}.json")["id"])
        assert set(with_words["id"]) <= tested
        assert all(by_id[i].has_audio and by_id[i].lyrics for i in with_words["id"])
        assert all(by_id[i].dataset == "mirex" for i in with_words["id"])
        # Withheld words: the audio decides alone; heard: the words weigh in.
        assert without["gate"] == [1.0] * len(without["id"])
        assert all(g < 1.0 for g in with_words["gate"])
        # With the words, the fold model answers as it did in the crossval run.
        stored = _clean(run / f"{fold}.json")
        row = {i: k for k, i in enumerate(stored["id"])}
        for k, example_id in enumerate(with_words["id"]):
            np.testing.assert_allclose(
                with_words["probs"][k], stored["probs"][row[example_id]], atol=2e-3
            )
        # And without them it answers differently on at least one clip.
        assert not np.allclose(with_words["probs"], without["probs"], atol=1e-4)
    printed = capsys.readouterr().out
    assert "A: the fold models with the words" in printed
    assert "MIREX-like" in printed and "mean audio gate" in printed


def test_a_fold_without_its_model_is_a_clear_error(crossval_run, tmp_path, capsys) -> None:
    data, run, cache = crossval_run
    copy = tmp_path / "cv"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "fold-2" / "model")
    document = json.loads((copy / "fold-2.json").read_text())
    document["checkpoint"] = str(tmp_path / "gone")
    (copy / "fold-2.json").write_text(json.dumps(document))
    out = tmp_path / "o"
    code = crossval_words.main(
        ["--data", str(data), "--run", str(copy), "--out", str(out), "--cache", str(cache)]
    )
    assert code == 1
    assert "fold-2: no saved fold model" in capsys.readouterr().err
