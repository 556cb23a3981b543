"""`lgfn train` / `lgfn evaluate` end to end on a tiny generated manifest (no shared data)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from audio_factory import make_audio_file
from safetensors.torch import load_file

from lgfn_model.cli import main as lgfn_main
from lgfn_model.evaluation.evaluate import run_evaluation
from lgfn_model.model.config import AudioConfig
from lgfn_model.model.network import LGFNOutput
from lgfn_model.runtime.checkpoint import load_checkpoint
from lgfn_model.testing import tiny_config, write_tiny_checkpoint
from lgfn_model.training.train import TrainSettings, teacher_losses, train

MOOD_KINDS = {"happy": "chord", "angry": "noise", "sad": "tone", "relaxed": "silence"}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    rows = ["id,audio,lyrics,mood,split"]
    for mood, kind in MOOD_KINDS.items():
        for n in range(3):
            audio = make_audio_file(root / f"{mood}{n}.flac", seconds=3.0, kind=kind, seed=n)
            lyrics = ""
            if n == 0:
                (root / f"{mood}{n}.lrc").write_text(
                    f"[00:00.50]{mood} song\n[00:01.50]{mood} again"
                )
                lyrics = f"{mood}{n}.lrc"
            split = "test" if n == 2 else "train"
            rows.append(f"{mood}{n},{audio.name},{lyrics},{mood},{split}")
    (root / "lyrics_only.lrc").write_text("[00:01.00]only words here\n[00:03.00]and more")
    rows.append("words,,lyrics_only.lrc,sad,train")
    path = root / "manifest.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def _settings(manifest: Path, out: Path, cache: Path) -> TrainSettings:
    tiny = dataclasses.asdict(tiny_config())
    tiny.pop("version")
    tiny["audio"] = tiny_config().audio
    return TrainSettings(
        data=manifest,
        out=out,
        cache=cache,
        epochs=2,
        batch_size=4,
        workers=0,
        device="cpu",
        config_overrides=tiny,
    )


def test_training_is_deterministic_and_writes_a_loadable_checkpoint(
    manifest: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    _, metadata = train(_settings(manifest, tmp_path / "a", cache))
    train(_settings(manifest, tmp_path / "b", cache))
    first = load_file(str(tmp_path / "a" / "model.safetensors"))
    second = load_file(str(tmp_path / "b" / "model.safetensors"))
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert metadata["train_examples"] == 9  # 8 clips of the train split + 1 lyrics-only
    assert len(metadata["loss_per_epoch"]) == 2
    model = load_checkpoint(tmp_path / "a")
    assert model.config.version == "lgfn-full-s0"


def test_training_with_a_musicnn_teacher(manifest: Path, tmp_path: Path) -> None:
    # The teacher has the real musicnn branch, so its features are cached on the items and the
    # student's windows start on the 3 s grid; one musicnn patch per 2.992 s window.
    audio = AudioConfig(window_seconds=2.992, n_mels=32, n_fft=512, hop_length=256)
    teacher = write_tiny_checkpoint(
        tmp_path / "teacher", version="tiny-teacher", pretrained_audio="musicnn-msd", audio=audio
    )
    settings = _settings(manifest, tmp_path / "student", tmp_path / "cache")
    settings.config_overrides["audio"] = audio
    settings = dataclasses.replace(settings, teacher=str(teacher), teacher_weight=2.0)
    _, metadata = train(settings)
    assert (metadata["teacher"], metadata["teacher_weight"]) == ("tiny-teacher", 2.0)
    assert load_checkpoint(tmp_path / "student").config.pretrained_audio is None
    assert list((tmp_path / "cache").rglob("*musicnn-msd*")), "teacher features were cached"

    settings.config_overrides["audio"] = tiny_config().audio  # other windows than the teacher's
    with pytest.raises(ValueError, match="other windows or labels"):
        train(dataclasses.replace(settings, out=tmp_path / "mismatch"))


def test_teacher_loss_is_lowest_when_the_student_agrees() -> None:
    def outputs(logits: list[list[float]], valence: list[float]) -> LGFNOutput:
        v = torch.tensor(valence)
        return LGFNOutput(torch.tensor(logits), v, -v, torch.ones(2, 3), torch.zeros(2, 3, 1))

    teacher = outputs([[2.0, 0.0, 0.0, -1.0], [0.0, 0.0, 3.0, 0.0]], [0.5, -0.5])
    index = torch.arange(2)
    same = teacher_losses(teacher, teacher, index, 2, temperature=2.0)
    other = outputs([[0.0, 2.0, 0.0, -1.0], [3.0, 0.0, 0.0, 0.0]], [-0.5, 0.5])
    assert same < teacher_losses(other, teacher, index, 2, temperature=2.0)


def test_evaluate_reports_every_subset_and_noise(manifest: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    train(_settings(manifest, tmp_path / "ckpt", cache))
    text, report = run_evaluation(
        manifest, tmp_path / "ckpt", snrs=[10.0], cache_dir=cache, device="cpu", workers=0
    )
    assert report["n"] == 4
    clean = report["clean"]["audio clips (4Q + MIREX-like)"]
    assert clean["mood"]["n"] == 4 and clean["mood"]["accuracy"] is not None
    assert report["clean"]["audio clips with lyrics"]["mood"]["n"] == 0
    assert "snr_10db" in report
    assert "white noise at 10 dB SNR" in text and "confusion" not in text


def test_compare_pairs_two_checkpoints_on_the_same_clips(manifest: Path, tmp_path: Path) -> None:
    from lgfn_model.evaluation.compare import format_comparison, run_comparison

    cache = tmp_path / "cache"
    audio = tiny_config().audio
    first = write_tiny_checkpoint(tmp_path / "a", seed=0, version="tiny-a", audio=audio)
    second = write_tiny_checkpoint(tmp_path / "b", seed=1, version="tiny-b", audio=audio)
    report = run_comparison(
        manifest, str(first), str(second), cache_dir=cache, device="cpu", workers=0
    )
    _, evaluated = run_evaluation(manifest, first, cache_dir=cache, device="cpu", workers=0)
    mood = report["mood"]
    assert (report["a"], report["b"], mood["n"]) == ("tiny-a", "tiny-b", 4)
    # The same accuracy `lgfn evaluate` reports, and the difference is the discordant clips'.
    assert (
        mood["accuracy_a"]
        == evaluated["clean"]["audio clips (4Q + MIREX-like)"]["mood"]["accuracy"]
    )
    assert mood["difference"] == pytest.approx((mood["only_a"] - mood["only_b"]) / 4)
    itself = run_comparison(
        manifest, str(first), str(first), cache_dir=cache, device="cpu", workers=0
    )
    assert all(
        itself[label]["only_a"] == itself[label]["only_b"] == 0 for label in ("mood", "valence")
    )
    text = format_comparison(report)
    assert "A = tiny-a, B = tiny-b" in text and "McNemar" in text


def test_cli_train_rejects_unknown_ablation(manifest: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        lgfn_main(["train", "--data", str(manifest), "--out", str(tmp_path), "--ablation", "x"])


def test_robustness_variants_are_what_users_have(tmp_path: Path) -> None:
    import mutagen.mp3
    import soundfile

    from lgfn_model.evaluation.robustness import write_variants

    source = make_audio_file(tmp_path / "clip.opus", seconds=2.0, channels=1, kind="chord")
    paths = write_variants(source, tmp_path)
    mp3 = mutagen.mp3.MP3(paths["mp3_192k_stereo"])
    assert abs(mp3.info.bitrate - 192000) < 1000  # short files report 191999
    assert (mp3.info.sample_rate, mp3.info.channels) == (44100, 2)
    quiet, _ = soundfile.read(paths["gain_-6db"])
    loud, _ = soundfile.read(paths["gain_+6db"])
    assert abs(loud).max() <= 1.0
    assert 1.9 < (abs(loud).max() / abs(quiet).max()) <= 4.0


def test_cli_train_gives_each_run_its_own_version(
    manifest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plugin knows a model by its version: two `lgfn train` runs must not share one."""
    from datetime import UTC, datetime

    import lgfn_model.training.train as training
    from lgfn_model.cli.train import run_version

    seen: list[str] = []

    def record(settings: TrainSettings) -> tuple[None, dict[str, float]]:
        seen.append(settings.version)
        return None, {"train_seconds": 0.0}

    monkeypatch.setattr(training, "train", record)
    common = ["train", "--data", str(manifest), "--threads", "1"]
    assert lgfn_main([*common, "--out", str(tmp_path / "a")]) == 0
    assert lgfn_main([*common, "--out", str(tmp_path / "b"), "--version", "mine-1"]) == 0
    assert seen[0].startswith("lgfn-full-s0-") and seen[1] == "mine-1"
    when = datetime(2026, 12, 5, 1, 2, 3, tzinfo=UTC)
    assert run_version("full", 3, when) == "lgfn-full-s3-20261205-010203"
