"""Students distilled per cross-validation fold: `lgfn distill --fold N` and `lgfn crossval
--student-folds DIR` (each fold starts from a student that never heard its test songs)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from crossval_factory import make_crossval_data, tiny_recipe

from lgfn_model.cli import main as lgfn_main
from lgfn_model.pretrained.student import MusicnnStudent, StudentConfig, save_student
from lgfn_model.runtime.checkpoint import checkpoint_metadata, load_checkpoint
from lgfn_model.training.crossval import CrossvalSettings, development_examples, run_crossval
from lgfn_model.training.crossval_student import fold_record
from lgfn_model.training.distill import DistillSettings, distill
from lgfn_model.training.splits import KFOLD_SALT, kfold_splits
from lgfn_model.training.train import TrainSettings

NARROW = StudentConfig(channels=(8, 16, 16, 32, 32), hidden=64)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_crossval_data(tmp_path_factory.mktemp("cvdata"))


@pytest.fixture(scope="module")
def students(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A student per fold of 2, distilled on that fold's training audio."""
    folder = tmp_path_factory.mktemp("students")
    for fold in (1, 2):
        distill(_distil_settings(data_root, folder / f"fold-{fold}", fold))
    return folder


def _distil_settings(root: Path, out: Path, fold: int | None) -> DistillSettings:
    return DistillSettings(
        data=root,
        out=out,
        cache=root.parent / f"{root.name}-cache",
        epochs=1,
        windows_per_clip=1,
        batch_size=4,
        workers=0,
        device="cpu",
        architecture=NARROW,
        fold=fold,
        folds=2,
    )


def _student_recipe(root: Path, cache: Path) -> TrainSettings:
    recipe = tiny_recipe(root, cache)
    overrides = {k: v for k, v in recipe.config_overrides.items() if not k.startswith("student_")}
    overrides["pretrained_audio"] = "musicnn-student"
    return dataclasses.replace(recipe, config_overrides=overrides)


def test_a_fold_student_hears_only_its_folds_training_audio(students: Path, data_root: Path):
    folds = kfold_splits(development_examples(data_root), 2)
    for fold, split in enumerate(folds, start=1):
        metadata = json.loads((students / f"fold-{fold}" / "config.json").read_text())["metadata"]
        train_audio = {e.audio for e in split.train if e.audio is not None}
        assert metadata["train_clips"] == len(train_audio) > 0
        assert metadata["crossval"] == fold_record(fold, 2, KFOLD_SALT, split.test)
        assert metadata["data"] == (
            f"audio of cross-validation fold {fold} of 2's training part (labels unused)"
        )
    # The two folds test different songs: their records differ.
    first = json.loads((students / "fold-1" / "config.json").read_text())["metadata"]
    assert (
        first["crossval"]["test_digest"]
        != fold_record(2, 2, KFOLD_SALT, folds[1].test)["test_digest"]
    )


def test_distill_refuses_a_fold_that_does_not_exist(data_root: Path, tmp_path: Path, capsys):
    with pytest.raises(ValueError, match=r"folds are numbered 1\.\.2"):
        distill(_distil_settings(data_root, tmp_path / "s", fold=3))
    args = ["distill", "--data", str(data_root), "--out", str(tmp_path / "s"), "--fold", "0"]
    assert lgfn_main([*args, "--folds", "2", "--workers", "0"]) == 2
    assert "lgfn distill: --fold: folds are numbered 1..2" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_each_fold_starts_from_the_student_of_its_own_fold(
    students: Path, data_root: Path, tmp_path: Path
) -> None:
    import torch

    cache = tmp_path / "cache"
    out = tmp_path / "cv"
    settings = CrossvalSettings(
        data=data_root,
        recipe=_student_recipe(data_root, cache),
        out=out,
        folds=2,
        student_folds=students,
    )
    assert run_crossval(settings)["folds_done"] == 2
    for fold in (1, 2):
        model = out / f"fold-{fold}" / "model"
        assert checkpoint_metadata(model)["student"] == f"{students.name}/fold-{fold}"
        assert load_checkpoint(model).distilled.student.config == NARROW
    # The two folds started from different students (distilled on different audio).
    first, second = (
        load_checkpoint(out / f"fold-{fold}" / "model").distilled.student.state_dict()
        for fold in (1, 2)
    )
    assert any(not torch.equal(first[k], second[k]) for k in first if first[k].is_floating_point())
    # The fingerprint names the students' run: the recipe with the shipped student is another.
    with pytest.raises(ValueError, match="another recipe"):
        run_crossval(dataclasses.replace(settings, student_folds=None))


def test_a_student_of_another_fold_or_of_no_fold_is_refused(
    students: Path, data_root: Path, tmp_path: Path
) -> None:
    swapped = tmp_path / "swapped"
    shutil.copytree(students / "fold-1", swapped / "fold-2")
    shutil.copytree(students / "fold-2", swapped / "fold-1")
    settings = CrossvalSettings(
        data=data_root,
        recipe=_student_recipe(data_root, tmp_path / "cache"),
        out=tmp_path / "cv",
        folds=2,
        student_folds=swapped,
    )
    with pytest.raises(ValueError, match="fold-1 was distilled for fold 2 of 2"):
        run_crossval(settings)
    # Distilled on the held-out split (as the shipped student is): it heard the test folds.
    plain = tmp_path / "plain"
    save_student(MusicnnStudent(NARROW), plain / "fold-1", {"data": "the held-out split"})
    with pytest.raises(ValueError, match="not distilled for a cross-validation fold"):
        run_crossval(dataclasses.replace(settings, student_folds=plain))
    with pytest.raises(ValueError, match="holds no distilled student"):
        run_crossval(dataclasses.replace(settings, student_folds=tmp_path / "nothing"))
    assert not (tmp_path / "cv").exists()  # refused before any fold trained


def test_student_folds_need_a_student_recipe_over_k_folds(
    students: Path, data_root: Path, tmp_path: Path, capsys
) -> None:
    args = ["crossval", "--data", str(data_root), "--folds", "2", "--out", str(tmp_path / "cv")]
    args += ["--student-folds", str(students), "--epochs", "1", "--workers", "0"]
    assert lgfn_main(args) == 2
    assert 'needs a recipe with pretrained_audio="musicnn-student"' in capsys.readouterr().err
    student = ["--set", 'pretrained_audio="musicnn-student"']
    assert lgfn_main([*args, *student, "--leave-out", "mirex"]) == 2
    assert "needs K folds (no --leave-out) and no --student" in capsys.readouterr().err
