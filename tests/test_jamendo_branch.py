"""``pretrained_audio: "musicnn-jamendo"``: the MTG-Jamendo musicnn as LGFN's frozen branch.

Tiny models (d_model 32, 32 mel bands) with the real shipped tagger: build, freezing, the
feature cache against the live branch, checkpoints, the Predictor, config checks, the CLI.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from audio_factory import make_audio_file

from lgfn_model.model.components import JamendoTagger, PretrainedTagger
from lgfn_model.model.config import AudioConfig, ConfigError, LGFNConfig, check_config_dict
from lgfn_model.model.network import LGFN, build_lgfn
from lgfn_model.pretrained.jamendo import load_jamendo_tagger
from lgfn_model.runtime.checkpoint import load_checkpoint, save_checkpoint
from lgfn_model.testing import tiny_config, write_tiny_checkpoint

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
# Two of the 2.992 s patches per window, at 16 kHz (the tagger's rate).
AUDIO = AudioConfig(window_seconds=5.984, n_mels=32, n_fft=512, hop_length=256)
CROSSVAL = (
    "lgfn crossval --data ../shared/data --folds 5 --epochs 30 --seed 0 --clip-chance 0.2 "
    "--jobs 2 --threads 1 --snr 0 --set pretrained_audio='\"musicnn-jamendo\"' "
    "--out runs/crossval-jamendo"
)


def _config(**overrides: object) -> LGFNConfig:
    values: dict[str, object] = {"pretrained_audio": "musicnn-jamendo", "audio": AUDIO}
    values.update(overrides)
    return tiny_config(**values).validate()


def _waves(n: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, AUDIO.window_samples, generator=generator) * 0.1


@pytest.fixture(scope="module")
def model() -> LGFN:
    torch.manual_seed(0)
    return build_lgfn(_config()).eval()


def test_forward_shapes(model: LGFN) -> None:
    assert isinstance(model.pretrained, JamendoTagger)
    assert model.config.pretrained_features == model.pretrained.FEATURES == 200
    waves = _waves(2)
    with torch.inference_mode():
        features = model.pretrained.features(waves)
        out = model(waves, torch.tensor([0.0, 5.984]))
    assert features.shape == (2, 2, 200)  # (windows, 3 s patches, embedding)
    assert out.mood_logits.shape == (2, 4) and out.gate.shape == (2, 4)
    assert out.valence.shape == out.arousal.shape == (2,)
    assert torch.isfinite(out.mood_logits).all()
    # Each patch is brought to the same RMS, so the gain does not matter (as musicnn-msd's).
    with torch.inference_mode():
        louder = model.pretrained.features(waves * 4)
    torch.testing.assert_close(louder, features, atol=1e-4, rtol=1e-4)


def test_build_loads_the_shipped_weights_on_a_forked_rng() -> None:
    config = _config()
    torch.manual_seed(3)
    built = build_lgfn(config)
    after_build = torch.rand(4)
    torch.manual_seed(3)
    bare = LGFN(config)
    after_bare = torch.rand(4)
    shipped = load_jamendo_tagger("musicnn").state_dict()
    ours = built.pretrained.tagger.state_dict()
    assert ours.keys() == shipped.keys()
    assert all(torch.equal(ours[k], shipped[k]) for k in shipped)
    assert not torch.equal(bare.pretrained.tagger.front.mel_fb, shipped["front.mel_fb"])
    # Reading the weights draws nothing: the rest of the model and what follows are the same.
    assert torch.equal(after_build, after_bare)
    rest = {k: v for k, v in bare.state_dict().items() if not k.startswith("pretrained.tagger.")}
    assert all(torch.equal(built.state_dict()[k], v) for k, v in rest.items())


def test_the_tagger_stays_frozen_through_a_training_step() -> None:
    from lgfn_model.training.train import parameter_groups

    torch.manual_seed(0)
    model = build_lgfn(_config()).train()
    assert not model.pretrained.tagger.training
    assert all(not m.training for m in model.pretrained.tagger.modules())
    assert not any(p.requires_grad for p in model.pretrained.tagger.parameters())
    tagger_before = {k: v.clone() for k, v in model.pretrained.tagger.state_dict().items()}
    project_before = {k: v.clone() for k, v in model.pretrained.project.state_dict().items()}
    groups = parameter_groups(model, 1e-2)
    tuned = {id(p) for group in groups for p in group["params"]}
    assert not tuned & {id(p) for p in model.pretrained.tagger.parameters()}
    optimizer = torch.optim.AdamW(groups, weight_decay=0.05)
    out = model(_waves(2), torch.zeros(2))
    loss = torch.nn.functional.cross_entropy(out.mood_logits, torch.tensor([0, 2]))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    after = model.pretrained.tagger.state_dict()  # weights and batch-norm statistics
    assert all(torch.equal(after[k], v) for k, v in tagger_before.items())
    projected = model.pretrained.project.state_dict()
    assert any(not torch.equal(projected[k], v) for k, v in project_before.items())


def test_cached_features_equal_the_live_ones(model: LGFN, tmp_path: Path) -> None:
    from lgfn_model.training.batches import LoadedExample, training_batch
    from lgfn_model.training.cache import FeatureCache
    from lgfn_model.training.datasets import Example
    from lgfn_model.training.pretrained_cache import PretrainedFeatureCache

    song = make_audio_file(tmp_path / "song.flac", seconds=7.5, kind="chord")
    cache = FeatureCache(tmp_path / "cache", sample_rate=16000)
    assert not cache.ensure_audio([song], workers=0)
    store = PretrainedFeatureCache(cache, "musicnn-jamendo")
    store.ensure([song], model.pretrained, AUDIO.window_samples, torch.device("cpu"))
    assert "musicnn-jamendo-v1" in store.path(song).parts
    assert store.path(song) != PretrainedFeatureCache(cache, "musicnn-msd").path(song)
    cached = store.load(song)
    assert cached.dtype == np.float16 and cached.shape == (3, 200)  # 7.5 s: 3 patches (padded)

    size = PretrainedTagger.PATCH_SAMPLES
    samples = cache.load_audio(song).astype(np.float32)
    padded = np.zeros(3 * size, dtype=np.float32)
    padded[: len(samples)] = samples[: len(padded)]
    windows = torch.from_numpy(np.stack([padded[: 2 * size], padded[size : 3 * size]]))
    with torch.inference_mode():
        live = model.pretrained.features(windows).numpy()  # (2 windows, 2 patches, 200)
    for first in (0, 1):
        got = cached[first : first + 2].astype(np.float32)
        want = live[first]
        # float16 storage: half an ulp of each value (2^-11 relative), plus batching noise.
        assert np.all(np.abs(got - want) <= np.abs(want) * 2.0**-11 + 1e-5), (
            f"window {first}: max abs difference {np.abs(got - want).max():.3g}"
        )

    # Training crops windows on the grid and hands the cached features to the branch.
    example = Example("song", "test", song, None, 0, None, None)
    item = LoadedExample(example, samples.astype(np.float16), None)
    item.pretrained = cached.astype(np.float32)
    batch = training_batch([item], model.config, np.random.default_rng(0))
    assert batch.pretrained is not None and batch.pretrained.shape == (1, 2, 200)
    with torch.inference_mode():
        from_cache = model(batch.waveforms, batch.starts, pretrained_features=batch.pretrained)
        from_live = model(batch.waveforms, batch.starts)
    torch.testing.assert_close(from_cache.mood_logits, from_live.mood_logits, atol=1e-3, rtol=0)


def test_checkpoint_round_trip(model: LGFN, tmp_path: Path) -> None:
    save_checkpoint(model, tmp_path / "ckpt")
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert loaded.config == model.config and isinstance(loaded.pretrained, JamendoTagger)
    waves, starts = _waves(2, seed=1), torch.tensor([0.0, 3.0])
    with torch.inference_mode():
        a, b = model(waves, starts), loaded(waves, starts)
    for name in ("mood_logits", "valence", "arousal", "gate", "embedding"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


def test_predictor_predicts_a_file_in_fp32_and_bf16(tmp_path: Path) -> None:
    from lgfn_model.runtime.predictor import Predictor

    checkpoint = write_tiny_checkpoint(
        tmp_path / "jamendo", pretrained_audio="musicnn-jamendo", audio=AUDIO
    )
    song = make_audio_file(tmp_path / "song.mp3", seconds=4.0, kind="tone")
    full = Predictor.load(checkpoint, device="cpu", workers=0, precision="fp32", threads=1)
    half = Predictor.load(checkpoint, device="cpu", workers=0, precision="bf16", threads=1)
    assert isinstance(full.model.pretrained, JamendoTagger)
    assert half.model.pretrained.compute_dtype == torch.bfloat16
    a, b = full.predict(song), half.predict(song)
    assert a.mood in a.probabilities
    assert sum(a.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    for mood, p in a.probabilities.items():
        assert abs(p - b.probabilities[mood]) < 0.02
    assert abs(a.valence - b.valence) < 0.02 and abs(a.arousal - b.arousal) < 0.02


def test_config_refuses_another_sample_rate_in_one_line() -> None:
    config = tiny_config(
        pretrained_audio="musicnn-jamendo",
        audio=AudioConfig(sample_rate=22050, n_mels=32, n_fft=512, hop_length=256),
    )
    with pytest.raises(ConfigError) as caught:
        config.validate()
    message = str(caught.value)
    assert message == (
        "audio.sample_rate is 22050; pretrained_audio 'musicnn-jamendo' reads 16000 Hz audio"
    )
    assert "\n" not in message
    with pytest.raises(ConfigError, match="reads 16000 Hz"):
        check_config_dict(config.to_dict())  # what loading a checkpoint checks
    assert _config().pretrained_audio == "musicnn-jamendo"
    assert LGFNConfig.from_dict(_config().to_dict()).pretrained_features == 200
    assert tiny_config(pretrained_audio="musicnn-msd").pretrained_features == 250
    assert tiny_config().pretrained_features == 0


def test_the_documented_crossval_command_parses(tmp_path: Path) -> None:
    from lgfn_model.cli import build_parser
    from lgfn_model.cli.train import recipe_settings
    from lgfn_model.training.train import build_config

    documented = (ROOT / "docs" / "cross-validation.md").read_text().replace("\\\n", " ")
    assert CROSSVAL in " ".join(documented.split())
    args = build_parser().parse_args(shlex.split(CROSSVAL)[1:])
    assert (args.command, args.folds, args.jobs, args.threads) == ("crossval", 5, 2, 1)
    settings = recipe_settings(args, Path(args.data), tmp_path)
    assert settings.config_overrides == {"pretrained_audio": "musicnn-jamendo"}
    config = build_config(settings)
    assert config.pretrained_audio == "musicnn-jamendo" and config.pretrained_features == 200
    # `lgfn train` takes the same --set.
    train_args = build_parser().parse_args(
        ["train", "--data", "d", "--out", "o", "--set", 'pretrained_audio="musicnn-jamendo"']
    )
    assert build_config(recipe_settings(train_args, Path("d"), tmp_path)).pretrained_audio == (
        "musicnn-jamendo"
    )


def test_warm_start_across_branches_leaves_the_projection_fresh() -> None:
    from lgfn_model.training.warm_start import warm_start

    torch.manual_seed(0)
    source = LGFN(tiny_config(pretrained_audio="musicnn-msd", audio=AUDIO))
    torch.manual_seed(1)
    target = LGFN(_config())
    before = {k: v.clone() for k, v in target.state_dict().items()}
    counts = warm_start(target, source, "msd")
    assert counts["copied"] > 0
    state = target.state_dict()
    for name, value in state.items():
        if name.startswith("pretrained."):
            assert torch.equal(value, before[name]), name  # neither tagger nor projection
    assert torch.equal(state["mood_head.weight"], source.state_dict()["mood_head.weight"])


def test_a_teacher_with_another_frozen_branch_is_refused(tmp_path: Path) -> None:
    from lgfn_model.training.cache import FeatureCache
    from lgfn_model.training.train import TrainSettings, load_teacher

    teacher = write_tiny_checkpoint(tmp_path / "msd", pretrained_audio="musicnn-msd", audio=AUDIO)
    settings = TrainSettings(data=tmp_path, out=tmp_path / "out", teacher=str(teacher))
    cache = FeatureCache(tmp_path / "cache", sample_rate=16000)
    with pytest.raises(ValueError, match="same frozen pretrained branch"):
        load_teacher(settings, _config(), [], cache, torch.device("cpu"))


def test_lgfn_train_with_the_branch_caches_it_and_keeps_it_frozen(tmp_path: Path) -> None:
    from training_factory import jamendo_training_settings

    from lgfn_model.training.train import train

    settings = jamendo_training_settings(tmp_path)
    _, metadata = train(settings)
    assert metadata["train_examples"] == 4
    assert len(list((tmp_path / "cache" / "musicnn-jamendo-v1").rglob("*.npy"))) == 4
    trained = load_checkpoint(tmp_path / "model")
    assert trained.config.pretrained_audio == "musicnn-jamendo"
    shipped = load_jamendo_tagger("musicnn").state_dict()
    ours = trained.pretrained.tagger.state_dict()
    assert all(torch.equal(ours[k], shipped[k]) for k in shipped)
