"""The distilled musicnn student: shapes, frozen in LGFN, checkpoint round trip, distill."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from audio_factory import make_audio_file

from lgfn_model.model.components import LogMel
from lgfn_model.model.config import AudioConfig, LGFNConfig
from lgfn_model.model.network import LGFN, build_lgfn
from lgfn_model.pretrained.student import (
    MusicnnStudent,
    StudentConfig,
    load_student,
    read_student_config,
    save_student,
)
from lgfn_model.runtime.checkpoint import load_checkpoint, save_checkpoint
from lgfn_model.testing import tiny_config
from lgfn_model.training.distill import DistillSettings, distill


def test_student_gives_one_feature_vector_per_3s_patch() -> None:
    audio = AudioConfig()
    log_mel = LogMel(audio)(torch.randn(2, audio.window_samples) * 0.1)
    out = MusicnnStudent().eval()(log_mel)
    assert out.shape == (2, 3, 250)
    assert torch.isfinite(out).all()


def test_student_branch_is_frozen_and_round_trips_through_a_checkpoint(tmp_path: Path) -> None:
    save_student(MusicnnStudent(), tmp_path / "student")
    torch.manual_seed(0)
    config = tiny_config(audio=AudioConfig(), pretrained_audio="musicnn-student")
    model = LGFN(config)
    model.distilled.student.load_state_dict(load_student(tmp_path / "student").state_dict())
    model.train()
    assert not model.distilled.student.training  # batch norms stay in eval mode
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert not any(n.startswith("distilled.student.") for n in trainable)
    assert any(n.startswith("distilled.project.") for n in trainable)

    model.eval()
    waves = torch.randn(3, config.audio.window_samples) * 0.1
    starts = torch.tensor([0.0, 9.0, 18.0])
    with torch.inference_mode():
        before = model(waves, starts).mood_logits
    save_checkpoint(model, tmp_path / "ckpt")
    loaded = load_checkpoint(tmp_path / "ckpt")
    with torch.inference_mode():
        after = loaded(waves, starts).mood_logits
    torch.testing.assert_close(before, after)


def test_tuned_student_learns_at_its_own_rate() -> None:
    from lgfn_model.training.train import parameter_groups

    torch.manual_seed(0)
    config = tiny_config(
        audio=AudioConfig(), pretrained_audio="musicnn-student", student_lr_scale=0.1
    )
    model = LGFN(config).train()
    assert not model.distilled.student.training  # batch norms stay frozen even when tuned
    groups = parameter_groups(model, 1e-3)
    assert [g["lr"] for g in groups] == [1e-3, pytest.approx(1e-4)]
    assert {id(p) for p in groups[1]["params"]} == {
        id(p) for p in model.distilled.student.parameters()
    }
    waves = torch.randn(2, config.audio.window_samples) * 0.1
    model(waves, torch.tensor([0.0, 9.0])).mood_logits.sum().backward()
    assert all(p.grad is not None for p in model.distilled.student.parameters())
    with torch.inference_mode():  # and no graph at prediction time
        assert not model.eval()(waves, torch.tensor([0.0, 9.0])).mood_logits.requires_grad


def test_distill_trains_a_loadable_student_on_a_manifest(tmp_path: Path) -> None:
    rows = ["id,audio,mood,split"]
    for n, (mood, kind) in enumerate((("happy", "chord"), ("angry", "noise"), ("sad", "tone"))):
        for split in ("train", "train", "test"):
            name = f"{mood}-{split}-{len(rows)}"
            make_audio_file(tmp_path / f"{name}.flac", seconds=4.0, kind=kind, seed=n)
            rows.append(f"{name},{name}.flac,{mood},{split}")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")

    narrow = StudentConfig(channels=(8, 16, 16, 32, 32), hidden=64)
    metadata = distill(
        DistillSettings(
            data=manifest,
            out=tmp_path / "student",
            cache=tmp_path / "cache",
            epochs=2,
            windows_per_clip=2,
            batch_size=4,
            workers=0,
            device="cpu",
            architecture=narrow,
            bf16=True,
        )
    )
    assert metadata["train_clips"] == 6
    assert len(metadata["mse_per_epoch"]) == 2
    assert all(isinstance(metadata[k], float) for k in ("heldout_r2_clean", "heldout_r2_snr0"))
    saved = json.loads((tmp_path / "student" / "config.json").read_text())
    assert saved["metadata"]["epochs"] == 2
    assert saved["metadata"]["bf16_autocast"] is True
    student = load_student(tmp_path / "student")
    assert not student.training
    assert student.config == narrow
    assert read_student_config(tmp_path / "student") == narrow


def test_model_config_carries_the_student_architecture(tmp_path: Path) -> None:
    wide = StudentConfig(channels=(8, 16, 16, 32, 48), hidden=40)
    save_student(MusicnnStudent(wide), tmp_path / "student")
    config = tiny_config(
        audio=AudioConfig(),
        pretrained_audio="musicnn-student",
        student_channels=wide.channels,
        student_hidden=wide.hidden,
    )
    model = build_lgfn(config, student_weights=tmp_path / "student").eval()
    assert model.distilled.student.config == wide
    save_checkpoint(model, tmp_path / "ckpt")
    loaded = load_checkpoint(tmp_path / "ckpt")  # rebuilt from the config alone
    assert loaded.distilled.student.config == wide
    assert loaded.config.student_channels == wide.channels

    other = tiny_config(audio=AudioConfig(), pretrained_audio="musicnn-student")
    with pytest.raises(ValueError, match="student_channels / student_hidden"):
        build_lgfn(other, student_weights=tmp_path / "student")


def test_old_configs_without_student_fields_load_as_the_original_student() -> None:
    data = tiny_config(audio=AudioConfig(), pretrained_audio="musicnn-student").to_dict()
    del data["student_channels"], data["student_hidden"]
    config = LGFNConfig.from_dict(data)
    assert StudentConfig(config.student_channels, hidden=config.student_hidden) == StudentConfig()


def test_training_fills_in_the_architecture_of_the_student_it_starts_from(tmp_path: Path) -> None:
    from lgfn_model.training.train import TrainSettings, build_config

    wide = StudentConfig(channels=(8, 16, 16, 32, 48), hidden=40)
    save_student(MusicnnStudent(wide), tmp_path / "student")
    settings = TrainSettings(
        data=tmp_path,
        out=tmp_path / "out",
        student=tmp_path / "student",
        config_overrides={"pretrained_audio": "musicnn-student"},
    )
    config = build_config(settings)
    assert (config.student_channels, config.student_hidden) == (wide.channels, wide.hidden)
    settings.config_overrides = {}
    with pytest.raises(ValueError, match="musicnn-student"):
        build_config(settings)


def test_distill_cli_reads_the_architecture() -> None:
    from lgfn_model.cli import build_parser

    args = build_parser().parse_args(
        ["distill", "--data", "d", "--out", "o", "--channels", "8,16,32", "--hidden", "64"]
    )
    assert args.channels == [8, 16, 32] and args.hidden == 64 and not args.bf16
    with pytest.raises(SystemExit):
        build_parser().parse_args(["distill", "--data", "d", "--out", "o", "--channels", "8,x"])


@pytest.mark.skipif(
    not (Path(__file__).parents[1] / "lgfn_model/weights/musicnn_student/config.json").is_file(),
    reason="no shipped student weights",
)
def test_shipped_student_loads() -> None:
    student = load_student()
    assert sum(p.numel() for p in student.parameters()) > 100_000


def test_clean_student_reads_the_window_before_noise_and_clipping() -> None:
    import numpy as np

    from lgfn_model.training.batches import LoadedExample, training_batch
    from lgfn_model.training.datasets import Example

    config = tiny_config(audio=AudioConfig(), pretrained_audio="musicnn-student")
    example = Example("a", "test", Path("a.ogg"), None, 0, 1.0, 1.0)
    tone = np.sin(np.arange(12 * 16000) * 0.05).astype(np.float16) * 0.5
    items = [LoadedExample(example, tone, None), LoadedExample(example, tone, None)]

    def batch(keep_clean: bool):
        rng = np.random.default_rng(3)
        return training_batch(
            items, config, rng, noise_snr_db=(0.0, 0.0), clip_chance=1.0, keep_clean=keep_clean
        )

    plain, kept = batch(False), batch(True)
    assert plain.clean_waveforms is None
    # Keeping the clean windows draws nothing: the degraded ones are the same either way.
    torch.testing.assert_close(kept.waveforms, plain.waveforms)
    offsets = (kept.starts * 16000).long()
    for i, offset in enumerate(offsets.tolist()):
        crop = torch.from_numpy(tone[offset : offset + config.audio.window_samples].astype("f4"))
        torch.testing.assert_close(kept.clean_waveforms[i], crop)
    assert (kept.waveforms - kept.clean_waveforms).abs().max() > 0.1

    torch.manual_seed(0)
    model = LGFN(config).eval()
    seen: list[torch.Tensor] = []
    model.distilled.register_forward_hook(lambda _m, args, _out: seen.append(args[0]))
    with torch.inference_mode():
        degraded = model(kept.waveforms, kept.starts).mood_logits
        same = model(kept.waveforms, kept.starts, pretrained_waveforms=kept.waveforms).mood_logits
        clean = model(
            kept.waveforms, kept.starts, pretrained_waveforms=kept.clean_waveforms
        ).mood_logits
        torch.testing.assert_close(seen[-1], model.log_mel(kept.clean_waveforms))
    torch.testing.assert_close(same, degraded)
    assert not torch.allclose(clean, degraded)


def test_clean_student_needs_a_student_model(tmp_path: Path) -> None:
    from lgfn_model.training.train import TrainSettings, build_config

    settings = TrainSettings(data=tmp_path, out=tmp_path / "out", clean_student=True)
    with pytest.raises(ValueError, match="--clean-student"):
        build_config(settings)
    settings.config_overrides = {"pretrained_audio": "musicnn-student"}
    assert build_config(settings).pretrained_audio == "musicnn-student"


def test_label_directions_point_along_the_features_that_predict_each_label() -> None:
    import numpy as np

    from lgfn_model.training.distill import label_directions, task_loss

    rng = np.random.default_rng(0)
    clips, labels = [], []
    for i in range(60):
        valence = 1.0 if i % 2 else -1.0
        features = rng.standard_normal((40, 250)).astype(np.float32)
        features[:, 3] += 2.0 * valence  # feature 3 carries valence, nothing carries arousal
        clips.append(features)
        labels.append((None, valence, None if i < 30 else float(rng.choice([-1, 1]))))
    directions = label_directions(clips, labels)
    assert directions.shape == (250, 2)  # no mood labels: only valence and arousal
    np.testing.assert_allclose(np.linalg.norm(directions, axis=0), 1.0, rtol=1e-5)
    assert abs(directions[3, 0]) > 0.9
    assert abs(directions[3, 1]) < 0.5

    target = torch.from_numpy(np.stack(clips[:4]))
    found, variance = torch.from_numpy(directions), torch.ones(2)
    assert float(task_loss(target, target, found, variance)) == 0.0
    along = target + 0.5 * found[:, 0]
    across = target.clone()
    across[..., 100] += 0.5  # an error in a feature no label depends on
    assert float(task_loss(along, target, found, variance)) > 10 * float(
        task_loss(across, target, found, variance)
    )


def test_mixed_clips_are_new_audio_with_musicnns_features_of_the_mix() -> None:
    import numpy as np

    from lgfn_model.model.components import PretrainedTagger
    from lgfn_model.training.distill import mix_with, mixed_clips

    rng = np.random.default_rng(0)
    t = np.arange(7 * 16000) / 16000
    a = (0.9 * np.sin(2 * np.pi * 220 * t)).astype(np.float16)
    b = (0.2 * np.sign(np.sin(2 * np.pi * 3 * t))).astype(np.float16)[: 5 * 16000]
    mixed = mix_with(a, b, rng)
    assert mixed.shape == a.shape and np.abs(mixed).max() <= 1.0
    residual = mixed - a.astype(np.float32) / max(1.0, float(np.abs(mixed).max()))
    assert 0 < np.sqrt(np.mean(residual**2)) <= np.sqrt(np.mean(a.astype(np.float32) ** 2)) * 1.01

    raw = [(Path("a"), a, np.zeros((2, 250), np.float32)), (Path("b"), b, np.zeros((1, 250)))]
    out = mixed_clips(raw, 1, torch.device("cpu"), np.random.default_rng(1))
    assert [(len(s), f.shape) for s, f in out] == [(len(a), (2, 250)), (len(b), (1, 250))]
    patch = PretrainedTagger.PATCH_SAMPLES
    expected = (
        PretrainedTagger(1, 1)
        .load_shipped_tagger()
        .eval()
        .features(torch.from_numpy(out[0][0][: 2 * patch].astype(np.float32)).view(2, patch))
    )
    np.testing.assert_allclose(out[0][1], expected.reshape(2, -1).numpy(), atol=0.05)
    assert not np.allclose(out[0][1], 0)


def test_distill_batches_are_made_one_at_a_time_and_are_reproducible(tmp_path: Path) -> None:
    """An epoch's windows held at once were 8 GB for the shipped student; one batch is ~18 MB."""
    import tracemalloc

    import numpy as np

    from lgfn_model.training.distill import Clip, batches

    settings = DistillSettings(data=tmp_path, out=tmp_path, windows_per_clip=4, batch_size=8)
    size = AudioConfig().window_samples
    rng = np.random.default_rng(0)
    clips = [
        Clip(
            (0.1 * rng.standard_normal(10 * 16000)).astype(np.float16),
            rng.standard_normal((3, 250)).astype(np.float32),
        )
        for _ in range(60)
    ]
    epoch_bytes = len(clips) * settings.windows_per_clip * size * 4  # 138 MB of windows
    tracemalloc.start()
    try:
        count = 0
        for waves, targets in batches(clips, settings, size, np.random.default_rng(3)):
            assert waves.shape[1:] == (size,) and targets.shape[1:] == (3, 250)
            count += len(waves)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == len(clips) * settings.windows_per_clip
    assert peak < epoch_bytes / 4

    again = list(batches(clips, settings, size, np.random.default_rng(3)))
    first = next(iter(batches(clips, settings, size, np.random.default_rng(3))))
    np.testing.assert_array_equal(first[0], again[0][0])
    assert sum(len(w) for w, _ in again) == count
