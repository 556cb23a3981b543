"""`lgfn train --init`: starting a model from a trained checkpoint's weights."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from audio_factory import make_audio_file

from lgfn_model.cli import build_parser
from lgfn_model.model.config import AudioConfig
from lgfn_model.model.network import LGFN
from lgfn_model.runtime.checkpoint import load_checkpoint
from lgfn_model.testing import tiny_config, write_tiny_checkpoint
from lgfn_model.training.train import TrainSettings, train
from lgfn_model.training.warm_start import warm_start

# One musicnn patch per window: both kinds of pretrained branch see the same 3 s grid.
AUDIO = AudioConfig(window_seconds=2.992, n_mels=32, n_fft=512, hop_length=256)


def _model(seed: int, **overrides: object) -> LGFN:
    torch.manual_seed(seed)
    return LGFN(tiny_config(audio=AUDIO, **overrides)).eval()


def test_fast_model_started_from_the_default_one_predicts_what_it_predicts() -> None:
    default = _model(0, pretrained_audio="musicnn-msd")
    fast = _model(1, pretrained_audio="musicnn-student")
    waves = torch.randn(2, AUDIO.window_samples) * 0.1
    starts = torch.tensor([0.0, 3.0])
    features = torch.randn(2, 1, 250)
    with torch.inference_mode():
        expected = default(waves, starts, pretrained_features=features)
        before = fast(waves, starts)
    counts = warm_start(fast, default, "default")
    assert counts["fresh"] == 0
    # A student that reproduced musicnn's features exactly would make the two models one.
    fast.distilled.student.forward = lambda log_mel: features  # type: ignore[method-assign]
    with torch.inference_mode():
        after = fast(waves, starts)
    assert not torch.allclose(before.mood_logits, expected.mood_logits)
    torch.testing.assert_close(after.mood_logits, expected.mood_logits)
    torch.testing.assert_close(after.valence, expected.valence)
    torch.testing.assert_close(after.gate, expected.gate)


def test_the_student_is_copied_only_from_a_model_that_has_one() -> None:
    source = _model(0, pretrained_audio="musicnn-student")
    target = _model(1, pretrained_audio="musicnn-student")
    warm_start(target, source, "fast")
    for ours, theirs in zip(
        target.distilled.student.parameters(), source.distilled.student.parameters(), strict=True
    ):
        assert torch.equal(ours, theirs)

    own = _model(2, pretrained_audio="musicnn-student")
    kept = [p.clone() for p in own.distilled.student.parameters()]
    warm_start(own, _model(0, pretrained_audio="musicnn-msd"), "default")
    after = list(own.distilled.student.parameters())
    assert all(torch.equal(a, b) for a, b in zip(kept, after, strict=True))


def test_a_model_of_another_width_is_refused() -> None:
    with pytest.raises(ValueError, match=r"--init wide: .* has shape"):
        warm_start(_model(0), _model(0, d_model=16), "wide")


def test_train_starts_from_the_checkpoint_and_records_it(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    rows = ["id,audio,lyrics,mood,split"]
    for n, (mood, kind) in enumerate([("happy", "chord"), ("sad", "tone")] * 2):
        audio = make_audio_file(root / f"{mood}{n}.flac", seconds=3.0, kind=kind, seed=n)
        rows.append(f"{mood}{n},{audio.name},,{mood},train")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    start = write_tiny_checkpoint(tmp_path / "start", version="tiny-start", audio=AUDIO)
    tiny = dataclasses.asdict(tiny_config(audio=AUDIO))
    tiny.pop("version")
    tiny["audio"] = AUDIO
    settings = TrainSettings(
        data=root / "manifest.csv",
        out=tmp_path / "out",
        cache=tmp_path / "cache",
        epochs=1,
        batch_size=4,
        learning_rate=0.0,  # no step moves the parameters: what is saved is what was copied
        workers=0,
        device="cpu",
        config_overrides=tiny,
        init=str(start),
    )
    _, metadata = train(settings)
    assert metadata["init"] == "tiny-start"
    trained, started = load_checkpoint(tmp_path / "out"), load_checkpoint(start)
    trained_parameters = dict(trained.named_parameters())
    for name, parameter in started.named_parameters():  # (batch-norm statistics do move)
        torch.testing.assert_close(trained_parameters[name], parameter)

    with pytest.raises(ValueError, match="--init"):
        tiny["d_model"] = 16
        train(dataclasses.replace(settings, out=tmp_path / "other"))


def test_cli_reads_init() -> None:
    args = build_parser().parse_args(["train", "--data", "d", "--out", "o", "--init", "default"])
    assert args.init == "default"


def test_train_only_freezes_the_rest_and_its_statistics() -> None:
    from lgfn_model.training.train import freeze_all_but, parameter_groups

    model = _model(0, pretrained_audio="musicnn-student", student_lr_scale=1.0).train()
    frozen_before = {k: v.clone() for k, v in model.state_dict().items() if "mel_resnet" in k}
    freeze_all_but(model, ("distilled",))
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained and all(n.startswith("distilled.") for n in trained)
    assert sum(len(g["params"]) for g in parameter_groups(model, 1e-3)) == len(trained)
    waves = torch.randn(4, AUDIO.window_samples) * 0.1
    out = model(waves, torch.zeros(4))
    out.mood_logits.sum().backward()  # gradients reach the student through the frozen rest
    assert all(model.get_parameter(n).grad is not None for n in trained)
    for name, value in model.state_dict().items():
        if "mel_resnet" in name:  # batch-norm statistics did not move either
            assert torch.equal(value, frozen_before[name]), name

    with pytest.raises(ValueError, match="no such module"):
        freeze_all_but(_model(0), ("distiled",))
    with pytest.raises(ValueError, match="nothing trainable"):
        freeze_all_but(_model(0, pretrained_audio="musicnn-student"), ("distilled.student",))
