"""tools.crossval_readout: a finished run's fold models given a lyrics read-out, measured again,
and `lgfn crossval --lyrics-readout`, which must give the same folds."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from crossval_factory import make_crossval_data, tiny_recipe

from lgfn_model.training.crossval import CrossvalSettings, development_examples, run_crossval
from tools import crossval_readout


@pytest.fixture(scope="module")
def song_text_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, object]:
    """A tiny 2-fold run of a song_text recipe: (data root, run folder, cache, recipe)."""
    base = tmp_path_factory.mktemp("readout")
    data = make_crossval_data(base / "data")
    cache = base / "cache"
    recipe = tiny_recipe(data, cache)
    recipe = dataclasses.replace(
        recipe, config_overrides={**recipe.config_overrides, "song_text": True}
    )
    run = base / "cv"
    run_crossval(CrossvalSettings(data=data, recipe=recipe, out=run, folds=2, jobs=1, snrs=(0.0,)))
    return data, run, cache, recipe


def _predictions(path: Path, condition: str = "clean") -> dict[str, list]:
    part = json.loads(path.read_text())["predictions"][condition]
    return {i: [*p, v, a] for i, p, v, a in zip(part["id"], part["probs"], part["p_valence"],
                                                 part["p_arousal"], strict=True)}  # fmt: skip


def test_the_readout_moves_only_tracks_with_lyrics(song_text_run, tmp_path, capsys) -> None:
    data, run, cache, _ = song_text_run
    out = tmp_path / "readout"
    args = ["--data", str(data), "--run", str(run), "--out", str(out), "--cache", str(cache)]
    assert crossval_readout.main([*args, "--readout-weight", "nju=0.1"]) == 0
    assert "pair it: lgfn compare --crossval" in capsys.readouterr().out
    by_id = {e.id: e for e in development_examples(data)}
    moved = 0
    for fold in ("fold-1", "fold-2"):
        document = json.loads((out / f"{fold}.json").read_text())
        assert document["without_lyrics_max_difference"] == 0
        assert document["lyrics_readout"]["dataset_weights"] == {"nju": 0.1}
        model = json.loads((out / fold / "model" / "config.json").read_text())
        assert model["config"]["lyrics_readout"] is True
        assert model["metadata"]["trained_on"] == f"{fold.replace('-', '')}of2"
        for condition in ("clean", "snr_0db"):
            new = _predictions(out / f"{fold}.json", condition)
            old = _predictions(run / f"{fold}.json", condition)
            assert new.keys() == old.keys()
            for example_id, values in new.items():
                if by_id[example_id].lyrics is None:
                    assert values == old[example_id]
                else:
                    moved += not np.allclose(values, old[example_id], atol=1e-6)
    assert moved > 0
    # A second call finds the folds written and keeps them.
    before = (out / "fold-1.json").read_text()
    assert crossval_readout.main([*args, "--readout-weight", "nju=0.1"]) == 0
    assert (out / "fold-1.json").read_text() == before


def test_crossval_with_the_readout_gives_the_tools_folds(song_text_run, tmp_path) -> None:
    data, run, cache, recipe = song_text_run
    tool_out = tmp_path / "tool"
    args = ["--data", str(data), "--run", str(run), "--out", str(tool_out), "--cache", str(cache)]
    assert crossval_readout.main([*args, "--readout-weight", "nju=0.1"]) == 0
    with_readout = dataclasses.replace(recipe, lyrics_readout=True, readout_weights={"nju": 0.1})
    trained = tmp_path / "cv-readout"
    run_crossval(
        CrossvalSettings(data=data, recipe=with_readout, out=trained, folds=2, jobs=1, snrs=())
    )
    for fold in ("fold-1", "fold-2"):
        ours, theirs = (
            _predictions(trained / f"{fold}.json"),
            _predictions(tool_out / f"{fold}.json"),
        )
        assert ours.keys() == theirs.keys()
        for example_id, values in ours.items():
            np.testing.assert_allclose(values, theirs[example_id], atol=2e-3)


def test_a_run_without_the_whole_text_is_refused(tmp_path, capsys) -> None:
    data = make_crossval_data(tmp_path / "data")
    cache = tmp_path / "cache"
    run = tmp_path / "cv"
    run_crossval(
        CrossvalSettings(data=data, recipe=tiny_recipe(data, cache), out=run, folds=2, jobs=1)
    )
    out = tmp_path / "o"
    code = crossval_readout.main(
        ["--data", str(data), "--run", str(run), "--out", str(out), "--cache", str(cache)]
    )
    assert code == 2
    assert "only a model trained with song_text" in capsys.readouterr().err
    assert not (out / "fold-1.json").exists()
