"""``--pretrained-noise``: the frozen pretrained branch's features of seeded noisy copies.

The shipped recipes cache the frozen branch's features of the clean clip while the other
branches learn with noise, so at 0 dB SNR the branch meets noise for the first time. These
tests check that the noisy copies are the live branch on the noisy clip, that a noisy training
window reads the copy of its own SNR, that a recipe without the option trains as before, and
that `lgfn train` / `lgfn crossval` carry the option.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from audio_factory import make_audio_file

from lgfn_model.model.components import PretrainedTagger
from lgfn_model.model.config import AudioConfig, LGFNConfig
from lgfn_model.model.network import LGFN, build_lgfn
from lgfn_model.testing import tiny_config
from lgfn_model.training.batches import LoadedExample, training_batch
from lgfn_model.training.cache import FeatureCache
from lgfn_model.training.datasets import Example
from lgfn_model.training.pretrained_cache import PretrainedFeatureCache

torch.set_num_threads(1)

PATCH = PretrainedTagger.PATCH_SAMPLES
# Two of the 2.992 s patches per window, at 16 kHz (the Jamendo tagger's rate).
AUDIO = AudioConfig(window_seconds=5.984, n_mels=32, n_fft=512, hop_length=256)


def _config(**overrides: object) -> LGFNConfig:
    values: dict[str, object] = {"pretrained_audio": "musicnn-jamendo", "audio": AUDIO}
    values.update(overrides)
    return tiny_config(**values).validate()


@pytest.fixture(scope="module")
def model() -> LGFN:
    torch.manual_seed(0)
    return build_lgfn(_config()).eval()


def _snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    signal = float(np.mean(np.square(clean, dtype=np.float64)))
    noise = float(np.mean(np.square(noisy - clean, dtype=np.float64)))
    return 10 * np.log10(signal / noise)


def test_noisy_copies_are_the_live_branch_on_a_seeded_noisy_clip(
    model: LGFN, tmp_path: Path
) -> None:
    song = make_audio_file(tmp_path / "song.flac", seconds=6.5, kind="chord")
    cache = FeatureCache(tmp_path / "cache", sample_rate=16000)
    assert not cache.ensure_audio([song], workers=0)
    clean = PretrainedFeatureCache(cache, "musicnn-jamendo")
    noisy = PretrainedFeatureCache(cache, "musicnn-jamendo", snr_db=0.0)
    for store in (clean, noisy):
        store.ensure([song], model.pretrained, AUDIO.window_samples, torch.device("cpu"))
    assert "musicnn-jamendo-snr0-v1" in noisy.path(song).parts
    assert noisy.path(song) != clean.path(song)
    assert noisy.path(song) != PretrainedFeatureCache(cache, "musicnn-jamendo", 10.0).path(song)

    # The noisy clip: the cached samples plus white noise at 0 dB of the whole clip's power,
    # the same every time it is asked for (so every process caches the same copy).
    samples = cache.load_audio(song).astype(np.float32)
    copy = noisy.clip_samples(song)
    assert np.array_equal(copy, noisy.clip_samples(song))
    assert _snr_db(samples, copy) == pytest.approx(0.0, abs=0.1)
    assert np.array_equal(clean.clip_samples(song), samples)

    cached = noisy.load(song).astype(np.float32)
    assert cached.shape == (3, 200)  # 6.5 s: 3 patches, the last one zero-padded
    padded = np.zeros(3 * PATCH, dtype=np.float32)
    padded[: len(copy)] = copy
    with torch.inference_mode():
        live = model.pretrained.features(torch.from_numpy(padded).view(1, 3 * PATCH))[0].numpy()
    assert np.all(np.abs(cached - live) <= np.abs(live) * 2.0**-11 + 1e-4)
    # and the noise changes what the branch hears
    assert np.abs(cached - clean.load(song).astype(np.float32)).max() > 0.05


def _item(name: str, seconds: float, rng: np.random.Generator) -> LoadedExample:
    samples = (rng.standard_normal(int(seconds * 16000)) * 0.1).astype(np.float16)
    patches = -(-len(samples) // PATCH)
    item = LoadedExample(Example(name, "test", None, None, 0, None, None), samples, None)
    # Marker features: 0 for the clean clip, 100 + SNR for each noisy copy.
    item.pretrained = np.zeros((patches, 200), dtype=np.float32)
    item.noisy_pretrained = {
        snr: np.full((patches, 200), 100.0 + snr, dtype=np.float32) for snr in (0.0, 10.0, 20.0)
    }
    return item


def test_a_noisy_window_reads_the_copy_of_its_own_snr() -> None:
    rng = np.random.default_rng(1)
    items = [_item(f"clip{n}", 9.0 + n, rng) for n in range(6)]
    config = _config()
    draws = np.random.default_rng(0)
    seen: dict[float, int] = {}
    clean_windows = 0
    for _ in range(20):
        batch = training_batch(
            items, config, draws, noise_snr_db=(0.0, 30.0), pretrained_noise=(0.0, 10.0, 20.0)
        )
        assert batch.pretrained is not None
        for i, item in enumerate(items):
            offset = int(round(float(batch.starts[i]) * 16000))
            window = item.samples[offset : offset + AUDIO.window_samples].astype(np.float32)
            marker = float(batch.pretrained[i, 0, 0])
            assert torch.all(batch.pretrained[i] == marker)
            if marker == 0.0:
                clean_windows += 1
                assert np.array_equal(batch.waveforms[i].numpy(), window)
            else:
                snr = marker - 100.0
                assert _snr_db(window, batch.waveforms[i].numpy()) == pytest.approx(snr, abs=0.5)
                seen[snr] = seen.get(snr, 0) + 1
    assert set(seen) == {0.0, 10.0, 20.0}
    assert 30 <= clean_windows <= 90  # half the windows get noise


def test_without_the_option_the_batches_are_as_before() -> None:
    """The recipes that do not ask for noisy copies (the shipped ones) draw the same random
    numbers and build the same batches whether or not the items carry copies."""
    rng = np.random.default_rng(2)
    items = [_item(f"clip{n}", 8.0 + n, rng) for n in range(5)]
    config = _config()
    plain = [dataclasses.replace(item, noisy_pretrained=None) for item in items]
    a = training_batch(items, config, np.random.default_rng(3), noise_snr_db=(0.0, 30.0))
    b = training_batch(plain, config, np.random.default_rng(3), noise_snr_db=(0.0, 30.0))
    assert torch.equal(a.waveforms, b.waveforms) and torch.equal(a.starts, b.starts)
    assert torch.equal(a.pretrained, b.pretrained) and float(a.pretrained.abs().max()) == 0.0


def test_a_missing_copy_is_named() -> None:
    item = _item("clip", 9.0, np.random.default_rng(4))
    item.noisy_pretrained = {0.0: item.noisy_pretrained[0.0]}
    with pytest.raises(ValueError, match="clip: no cached pretrained features at 10 dB SNR"):
        for seed in range(20):  # until a window draws noise at 10 dB
            training_batch(
                [item],
                _config(),
                np.random.default_rng(seed),
                noise_snr_db=(0.0, 30.0),
                pretrained_noise=(10.0,),
            )


def test_recipes_without_a_cached_branch_refuse_it_in_one_line(tmp_path: Path) -> None:
    from lgfn_model.training.train import TrainSettings, build_config

    for overrides in ({"pretrained_audio": None}, {"pretrained_audio": "musicnn-student"}):
        settings = TrainSettings(
            data=tmp_path, out=tmp_path / "o", pretrained_noise=(0.0,), config_overrides=overrides
        )
        with pytest.raises(ValueError, match="--pretrained-noise needs a cached frozen branch"):
            build_config(settings)
    fine = TrainSettings(data=tmp_path, out=tmp_path / "o", pretrained_noise=(0.0, 10.0))
    assert build_config(fine).pretrained_audio == "musicnn-msd"


def test_the_cli_carries_it_and_crossval_keeps_old_fingerprints(tmp_path: Path) -> None:
    from lgfn_model.cli import build_parser
    from lgfn_model.cli.train import recipe_settings
    from lgfn_model.training.crossval import recipe_dict

    base = ["crossval", "--data", "d", "--folds", "5"]
    args = build_parser().parse_args([*base, "--pretrained-noise", "0", "10", "10", "20"])
    noisy = recipe_settings(args, Path("d"), tmp_path)
    assert noisy.pretrained_noise == (0.0, 10.0, 20.0)
    plain = recipe_settings(build_parser().parse_args(base), Path("d"), tmp_path)
    assert plain.pretrained_noise == ()
    # Fold results stored before the option existed keep matching a recipe without it.
    assert "pretrained_noise" not in recipe_dict(plain)
    assert recipe_dict(noisy)["pretrained_noise"] == [0.0, 10.0, 20.0]
    train_args = build_parser().parse_args(
        ["train", "--data", "d", "--out", "o", "--pretrained-noise", "0"]
    )
    assert recipe_settings(train_args, Path("d"), tmp_path).pretrained_noise == (0.0,)


def test_lgfn_train_fills_the_noisy_copies_and_records_them(tmp_path: Path) -> None:
    from training_factory import jamendo_training_settings

    from lgfn_model.training.train import train

    settings = jamendo_training_settings(tmp_path, epochs=2, pretrained_noise=(0.0, 12.0))
    _, metadata = train(settings)
    assert metadata["pretrained_noise"] == [0.0, 12.0]
    for folder in ("musicnn-jamendo-v1", "musicnn-jamendo-snr0-v1", "musicnn-jamendo-snr12-v1"):
        assert len(list((tmp_path / "cache" / folder).rglob("*.npy"))) == 4, folder
