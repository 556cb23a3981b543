"""A listener's mood head on disk: saved, read back, refused when damaged; the shipped head."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lgfn_model.runtime.personal_head import (
    HEAD_INFO,
    HEAD_WEIGHTS,
    Head,
    PersonalHead,
    PersonalHeadError,
    base_version,
    load_personal_head,
    read_mood_head,
    remove_personal_head,
    save_personal_head,
)

LABELS = ("happy", "angry", "sad", "relaxed")


def _head(seed: int = 0) -> PersonalHead:
    rng = np.random.default_rng(seed)
    head = Head(rng.standard_normal((4, 8)), rng.standard_normal(4))
    return PersonalHead("lgfn-x", LABELS, head, {"labels": {"sad": 3}})


def test_a_saved_head_reads_back_the_same(tmp_path: Path) -> None:
    personal = _head()
    save_personal_head(tmp_path / "emotion", personal)
    loaded = load_personal_head(tmp_path / "emotion")
    assert loaded is not None
    assert loaded.version == personal.version
    assert loaded.version.startswith("lgfn-x+you-") and len(loaded.tag) == 4
    assert loaded.info == {"labels": {"sad": 3}}
    embedding = list(np.linspace(-1, 1, 8))
    for label, p in personal.probabilities(embedding).items():
        assert loaded.probabilities(embedding)[label] == pytest.approx(p, abs=1e-6)
    assert remove_personal_head(tmp_path / "emotion")
    assert load_personal_head(tmp_path / "emotion") is None
    assert not remove_personal_head(tmp_path / "emotion")


def test_another_fit_is_another_version() -> None:
    assert _head(0).version != _head(1).version
    assert base_version(_head(0).version) == "lgfn-x"
    assert base_version("lgfn-x") == "lgfn-x"


def test_damaged_heads_are_refused_in_one_line(tmp_path: Path) -> None:
    save_personal_head(tmp_path, _head())
    (tmp_path / HEAD_WEIGHTS).write_bytes(b"\0" * 20)
    with pytest.raises(PersonalHeadError, match="does not match personal-head.json"):
        load_personal_head(tmp_path)
    (tmp_path / HEAD_WEIGHTS).unlink()
    with pytest.raises(PersonalHeadError, match="missing"):
        load_personal_head(tmp_path)
    save_personal_head(tmp_path, _head())
    document = json.loads((tmp_path / HEAD_INFO).read_text())
    (tmp_path / HEAD_INFO).write_text(json.dumps({**document, "format_version": 9}))
    with pytest.raises(PersonalHeadError, match="format version 9"):
        load_personal_head(tmp_path)
    (tmp_path / HEAD_INFO).write_text(json.dumps({**document, "labels": ["happy"]}))
    with pytest.raises(PersonalHeadError, match="inconsistent head"):
        load_personal_head(tmp_path)
    (tmp_path / HEAD_INFO).write_text("{not json")
    with pytest.raises(PersonalHeadError, match="cannot read"):
        load_personal_head(tmp_path)


def test_the_shipped_head_is_the_models_own(tmp_path: Path) -> None:
    from lgfn_model.runtime.checkpoint import load_checkpoint
    from lgfn_model.testing import write_tiny_checkpoint

    checkpoint = write_tiny_checkpoint(tmp_path / "model", seed=0)
    model = load_checkpoint(checkpoint)
    head = read_mood_head(checkpoint)
    assert np.allclose(head.weight, model.mood_head.weight.detach().numpy())
    assert np.allclose(head.bias, model.mood_head.bias.detach().numpy())
    from lgfn_model.runtime.checkpoint_files import CheckpointError

    with pytest.raises(CheckpointError, match="cannot read the mood head"):
        read_mood_head(tmp_path / "nowhere")
