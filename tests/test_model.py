"""The LGFN model itself: gates, the time prior, ablation switches, checkpoints."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from lgfn_model.model.components import AttentionalAlignment
from lgfn_model.model.network import LGFN, LyricsBatch, build_lgfn, pool_windows
from lgfn_model.runtime.checkpoint import (
    CheckpointError,
    CheckpointMissingError,
    load_checkpoint,
    save_checkpoint,
)
from lgfn_model.testing import tiny_config

NAN = float("nan")


def _lyrics(windows: int, lines: int, timed: bool, dim: int = 384) -> LyricsBatch:
    generator = torch.Generator().manual_seed(1)
    starts = torch.arange(lines, dtype=torch.float32) * 0.5
    if not timed:
        starts = torch.full((lines,), NAN)
    return LyricsBatch(
        torch.randn(1, lines, dim, generator=generator).expand(windows, -1, -1),
        torch.ones(windows, lines, dtype=torch.bool),
        starts.expand(windows, -1),
        (starts + 0.5).expand(windows, -1),
    )


@pytest.fixture(scope="module")
def model() -> LGFN:
    torch.manual_seed(0)
    return LGFN(tiny_config()).eval()


def _waves(windows: int, config) -> torch.Tensor:
    return torch.randn(
        windows, config.audio.window_samples, generator=torch.Generator().manual_seed(2)
    )


def test_output_shapes_and_ranges(model: LGFN) -> None:
    config = model.config
    out = model(_waves(3, config), torch.tensor([0.0, 2.0, 4.0]), _lyrics(3, 5, timed=True))
    assert out.mood_logits.shape == (3, 4)
    assert out.gate.shape == (3, config.frames_per_window)
    assert out.attention.shape == (3, config.frames_per_window, 5)
    assert torch.allclose(out.attention.sum(-1), torch.ones(3, config.frames_per_window), atol=1e-5)
    assert out.valence.abs().max() <= 1 and out.arousal.abs().max() <= 1
    assert ((out.gate > 0) & (out.gate < 1)).all()


def test_without_lyrics_gate_is_exactly_audio(model: LGFN) -> None:
    config = model.config
    starts = torch.zeros(2)
    out = model(_waves(2, config), starts, None)
    assert torch.equal(out.gate, torch.ones_like(out.gate))
    empty = LyricsBatch(
        torch.zeros(2, 3, 384),
        torch.zeros(2, 3, dtype=torch.bool),
        torch.full((2, 3), NAN),
        torch.full((2, 3), NAN),
    )
    out_empty = model(_waves(2, config), starts, empty)
    assert torch.equal(out_empty.gate, torch.ones_like(out_empty.gate))
    # With no lyrics, the result is the audio-only result whatever the (masked) embeddings hold.
    assert torch.allclose(out.mood_logits, out_empty.mood_logits, atol=1e-6)


def test_without_audio_gate_is_exactly_lyrics(model: LGFN) -> None:
    config = model.config
    present = torch.tensor([False, True])
    out = model(_waves(2, config), torch.zeros(2), _lyrics(2, 4, timed=False), present)
    assert torch.equal(out.gate[0], torch.zeros_like(out.gate[0]))
    assert ((out.gate[1] > 0) & (out.gate[1] < 1)).all()


def test_time_prior_moves_attention_to_the_sung_line() -> None:
    torch.manual_seed(0)
    aal = AttentionalAlignment(d_model=8, sigma_seconds=2.0)
    audio = torch.randn(1, 4, 8)
    frame_times = torch.tensor([[1.0, 11.0, 21.0, 31.0]])
    lines = torch.randn(1, 1, 8).expand(1, 4, 8)  # four identical lines: content cannot choose
    mask = torch.ones(1, 4, dtype=torch.bool)
    starts = torch.tensor([[0.0, 10.0, 20.0, 30.0]])
    ends = starts + 3.0
    _, untimed, _ = aal(audio, frame_times, lines, mask, torch.full_like(starts, NAN), ends * NAN)
    _, timed, nearest = aal(audio, frame_times, lines, mask, starts, ends)
    assert torch.allclose(untimed, torch.full_like(untimed, 0.25), atol=1e-5)
    for frame in range(4):
        assert timed[0, frame].argmax() == frame
        assert timed[0, frame, frame] > 0.9
    assert torch.equal(nearest, torch.zeros_like(nearest))  # every frame is inside a sung line


@pytest.mark.parametrize("fusion", ["dgfm", "concat", "audio_only", "lyrics_only"])
@pytest.mark.parametrize("aal", [True, False])
def test_ablation_variants_run(fusion: str, aal: bool) -> None:
    model = LGFN(tiny_config(fusion=fusion, use_aal=aal, use_waveform_branch=aal)).eval()
    out = model(_waves(2, model.config), torch.zeros(2), _lyrics(2, 3, timed=True))
    assert torch.isfinite(out.mood_logits).all()
    if fusion == "audio_only":
        assert torch.equal(out.gate, torch.ones_like(out.gate))


def test_pool_windows_means_per_track() -> None:
    values = torch.tensor([[1.0], [3.0], [10.0]])
    pooled = pool_windows(values, torch.tensor([0, 0, 1]), 2)
    assert pooled.tolist() == [[2.0], [10.0]]


def test_checkpoint_round_trip(tmp_path: Path, model: LGFN) -> None:
    save_checkpoint(model, tmp_path / "ckpt", metadata={"note": "test"})
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert loaded.config == model.config
    waves = _waves(2, model.config)
    lyrics = _lyrics(2, 3, timed=True)
    with torch.inference_mode():
        a = model(waves, torch.zeros(2), lyrics)
        b = loaded(waves, torch.zeros(2), lyrics)
    assert torch.equal(a.mood_logits, b.mood_logits)
    assert torch.equal(a.gate, b.gate)
    document = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert document["label_map"] == {"0": "happy", "1": "angry", "2": "sad", "3": "relaxed"}


def test_missing_checkpoint_says_so(tmp_path: Path) -> None:
    with pytest.raises(CheckpointMissingError, match="not found"):
        load_checkpoint(tmp_path / "nothing")


def test_shipped_models_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lgfn_model.runtime.checkpoint_files import (
        SHIPPED_MODELS,
        checkpoint_version,
        default_checkpoint_dir,
        resolve_checkpoint,
    )

    weights = default_checkpoint_dir().parent
    assert resolve_checkpoint(None) == weights / "default"
    for name in SHIPPED_MODELS:
        assert checkpoint_version(name).startswith("lgfn-")  # each ships with the package
    assert resolve_checkpoint("musicnn") == weights / "musicnn"
    # ``fast`` became the default: the same folder, so the same version (no re-tagging).
    assert resolve_checkpoint("fast") == weights / "default"
    assert checkpoint_version("default") != checkpoint_version("musicnn")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fast").mkdir()  # a folder of that name here is the user's, and wins
    assert resolve_checkpoint("fast") == Path("fast")
    assert resolve_checkpoint("my-run") == Path("my-run")


def test_pickle_payload_is_refused_and_never_run(tmp_path: Path, model: LGFN) -> None:
    directory = save_checkpoint(model, tmp_path / "ckpt")
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (marker.write_text, ("ran",))

    (directory / "model.safetensors").write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        load_checkpoint(directory)
    assert not marker.exists()


def test_wrong_shapes_and_versions_are_refused(tmp_path: Path, model: LGFN) -> None:
    directory = save_checkpoint(model, tmp_path / "ckpt")
    document = json.loads((directory / "config.json").read_text())
    document["config"]["d_model"] = 48
    (directory / "config.json").write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="has shape"):
        load_checkpoint(directory)
    document["format_version"] = 99
    (directory / "config.json").write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="format version"):
        load_checkpoint(directory)
    (directory / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(directory)


def test_pretrained_branch_is_frozen_and_cacheable() -> None:
    from lgfn_model.model.config import AudioConfig

    audio = AudioConfig(window_seconds=8.976, n_mels=32, n_fft=512, hop_length=256)
    torch.manual_seed(0)
    config = tiny_config(pretrained_audio="musicnn-msd", audio=audio, frames_per_window=9)
    model = build_lgfn(config)
    assert model.pretrained is not None
    model.train()
    assert not model.pretrained.tagger.training
    assert not any(p.requires_grad for p in model.pretrained.tagger.parameters())
    model.eval()
    waves = _waves(2, model.config) * 0.1
    features = model.pretrained.features(waves)
    assert features.shape == (2, 3, 250)
    # Gain does not matter to the branch: each 3 s patch is brought to the same RMS.
    assert torch.allclose(model.pretrained.features(waves * 4), features, atol=1e-3)
    with torch.inference_mode():
        live = model(waves, torch.zeros(2))
        cached = model(waves, torch.zeros(2), pretrained_features=features)
    assert torch.allclose(live.mood_logits, cached.mood_logits, atol=1e-5)


def test_bf16_runs_the_audio_branches_in_bf16_close_to_float32() -> None:
    from lgfn_model.model.config import AudioConfig

    torch.manual_seed(0)
    config = tiny_config(audio=AudioConfig(), pretrained_audio="musicnn-student")
    model = build_lgfn(config).eval()
    waves, starts = _waves(2, config) * 0.1, torch.tensor([0.0, 9.0])
    lyrics = _lyrics(2, 4, timed=True)
    with torch.inference_mode():
        reference = model(waves, starts, lyrics)
        model.set_compute_dtype(torch.bfloat16)
        assert model.mel_resnet.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
        seen: list[torch.dtype] = []
        hook = model.mel_resnet.stem[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
        half = model(waves, starts, lyrics)
        hook.remove()
        model.set_compute_dtype(torch.float32)
        again = model(waves, starts, lyrics)
    assert seen == [torch.bfloat16]
    assert half.mood_logits.dtype == torch.float32
    torch.testing.assert_close(half.mood_logits, reference.mood_logits, atol=0.05, rtol=0.05)
    torch.testing.assert_close(half.valence, reference.valence, atol=0.03, rtol=0.05)
    torch.testing.assert_close(again.mood_logits, reference.mood_logits)  # fp32 is exact again


def test_training_ignores_the_inference_dtype(model: LGFN) -> None:
    trained = LGFN(model.config)
    trained.set_compute_dtype(torch.bfloat16).train()
    seen: list[torch.dtype] = []
    trained.mel_resnet.stem[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    trained(_waves(2, model.config), torch.tensor([0.0, 2.0]))
    assert seen == [torch.float32]
    with pytest.raises(ValueError, match="float32 or bfloat16"):
        trained.set_compute_dtype(torch.float16)
