"""tools.crossval_ensemble: fold predictions of several runs averaged example by example."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.crossval_ensemble import ensemble, main


def _fold(
    folder: Path, name: str, ids: list[str], probs: list[list[float]], valence: float
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    part = {
        "id": ids,
        "probs": probs,
        "p_valence": [valence] * len(ids),
        "p_arousal": [0.5] * len(ids),
    }
    document = {"fold": int(name.split("-")[1]), "predictions": {"clean": part}}
    (folder / f"{name}.json").write_text(json.dumps(document))


def test_members_are_averaged_by_example_id_over_the_folds_all_have(tmp_path: Path) -> None:
    a, b, out = tmp_path / "a", tmp_path / "b", tmp_path / "out"
    _fold(a, "fold-1", ["x", "y"], [[1, 0, 0, 0], [0, 1, 0, 0]], 0.2)
    _fold(b, "fold-1", ["y", "x"], [[0, 0, 1, 0], [0, 0, 0, 1]], 0.6)  # other order
    _fold(a, "fold-2", ["z"], [[1, 0, 0, 0]], 0.2)  # only in a: not written
    assert ensemble([a, b], out) == ["fold-1"]
    written = json.loads((out / "fold-1.json").read_text())["predictions"]["clean"]
    assert written["id"] == ["x", "y"]
    assert written["probs"] == [[0.5, 0, 0, 0.5], [0, 0.5, 0.5, 0]]
    assert written["p_valence"] == pytest.approx([0.4, 0.4])
    assert not (out / "fold-2.json").exists()


def test_folds_that_tested_other_examples_are_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _fold(a, "fold-1", ["x", "y"], [[1, 0, 0, 0], [0, 1, 0, 0]], 0.2)
    _fold(b, "fold-1", ["x", "w"], [[1, 0, 0, 0], [0, 1, 0, 0]], 0.2)
    assert main([str(a), str(b), "--out", str(tmp_path / "out")]) == 1
    assert "fold-1 (clean): the runs tested different examples" in capsys.readouterr().err
