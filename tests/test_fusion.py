"""The fusion step as its own module per choice, built from the config; checkpoints written with
the earlier state names load unchanged; building a model reads no weights from disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from lgfn_model.model import fusion as fusion_module
from lgfn_model.model.config import AudioConfig
from lgfn_model.model.fusion import (
    AudioOnlyFusion,
    ConcatFusion,
    DynamicGate,
    LyricsOnlyFusion,
    build_fusion,
    migrate_state_names,
)
from lgfn_model.model.network import LGFN, LyricsBatch, build_lgfn
from lgfn_model.runtime.checkpoint import load_checkpoint, save_checkpoint
from lgfn_model.testing import tiny_config


def _inputs(model: LGFN) -> tuple[torch.Tensor, torch.Tensor, LyricsBatch]:
    torch.manual_seed(1)
    waves = torch.randn(2, model.config.audio.window_samples) * 0.1
    lyrics = LyricsBatch(
        torch.nn.functional.normalize(torch.randn(2, 3, model.config.text_dim), dim=-1),
        torch.tensor([[True, True, False], [True, True, True]]),
        torch.tensor([[0.0, 1.0, float("nan")], [0.0, 0.5, 1.5]]),
        torch.tensor([[1.0, 2.0, float("nan")], [0.5, 1.5, 2.5]]),
    )
    return waves, torch.zeros(2), lyrics


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("dgfm", DynamicGate),
        ("concat", ConcatFusion),
        ("audio_only", AudioOnlyFusion),
        ("lyrics_only", LyricsOnlyFusion),
    ],
)
def test_the_config_picks_the_fusion_module(name: str, kind: type) -> None:
    model = LGFN(tiny_config(fusion=name))
    assert type(model.fusion) is kind
    waves, starts, lyrics = _inputs(model)
    with torch.inference_mode():
        out = model.eval()(waves, starts, lyrics)
    assert out.gate.shape == (2, model.config.frames_per_window)
    expected = {"audio_only": 1.0, "lyrics_only": 0.0, "concat": 0.5}.get(name)
    if expected is not None:
        assert torch.all(out.gate == expected)
    else:
        assert torch.all((out.gate > 0) & (out.gate < 1))


def test_an_unknown_fusion_is_one_line() -> None:
    config = tiny_config()
    object.__setattr__(config, "fusion", "sum")
    with pytest.raises(ValueError, match="unknown fusion 'sum'; use one of dgfm, concat"):
        build_fusion(config)


def _as_written_before(directory: Path) -> None:
    """Rename a checkpoint's tensors to the names used before the fusion was a module: the
    gate under ``gate.`` (present for every fusion), the concat layer under ``concat_fusion.``."""
    weights = directory / "model.safetensors"
    state = load_file(str(weights))
    fusion = json.loads((directory / "config.json").read_text())["config"]["fusion"]
    old: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        if name.startswith("fusion.project."):
            old["concat_fusion." + name.removeprefix("fusion.project.")] = tensor
        elif name.startswith("fusion."):
            old["gate." + name.removeprefix("fusion.")] = tensor
        else:
            old[name] = tensor
    if fusion != "dgfm":  # the unused gate that every model used to carry
        gate = DynamicGate(tiny_config().d_model).state_dict()
        old.update({f"gate.{name}": tensor for name, tensor in gate.items()})
    save_file(old, str(weights))


@pytest.mark.parametrize("name", ["dgfm", "concat", "audio_only"])
def test_checkpoints_with_the_earlier_names_load_and_predict_the_same(
    tmp_path: Path, name: str
) -> None:
    torch.manual_seed(0)
    model = LGFN(tiny_config(fusion=name)).eval()
    save_checkpoint(model, tmp_path / "ckpt")
    _as_written_before(tmp_path / "ckpt")
    assert not any(
        n.startswith("fusion.") for n in load_file(str(tmp_path / "ckpt/model.safetensors"))
    )
    loaded = load_checkpoint(tmp_path / "ckpt")
    waves, starts, lyrics = _inputs(model)
    with torch.inference_mode():
        torch.testing.assert_close(
            loaded(waves, starts, lyrics).mood_logits,
            model(waves, starts, lyrics).mood_logits,
            rtol=0,
            atol=0,
        )


def test_todays_names_are_left_as_they_are() -> None:
    names = {"fusion.gate.0.weight": 1, "gate_bias_unrelated": 2}
    assert migrate_state_names(names, "dgfm") is names


def test_building_a_model_reads_no_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    from lgfn_model.pretrained import musicnn, student

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a constructor read weights from disk")

    monkeypatch.setattr(musicnn, "load_musicnn_msd", refuse)
    monkeypatch.setattr(student, "load_student", refuse)
    for branch in ("musicnn-msd", "musicnn-student"):
        LGFN(tiny_config(audio=AudioConfig(), pretrained_audio=branch))


def test_build_lgfn_starts_the_pretrained_branch_from_its_weights() -> None:
    from lgfn_model.pretrained.musicnn import load_musicnn_msd

    config = tiny_config(audio=AudioConfig(), pretrained_audio="musicnn-msd")
    torch.manual_seed(0)
    built = build_lgfn(config)
    after_built = torch.rand(3)
    torch.manual_seed(0)
    bare = LGFN(config)
    after_bare = torch.rand(3)
    shipped = load_musicnn_msd("cpu").state_dict()
    for name, tensor in built.pretrained.tagger.state_dict().items():
        assert torch.equal(tensor, shipped[name])
    bare_tagger = bare.pretrained.tagger.state_dict()
    assert not torch.equal(bare_tagger["classifier.weight"], shipped["classifier.weight"])
    # Reading the weights draws no random numbers: training's next draws are a bare build's.
    assert torch.equal(built.mel_resnet.stem[0].weight, bare.mel_resnet.stem[0].weight)
    assert torch.equal(after_built, after_bare)


def test_fusion_module_names_every_config_choice() -> None:
    from lgfn_model.model.config import FUSIONS

    assert set(fusion_module.FUSIONS) == set(FUSIONS)
