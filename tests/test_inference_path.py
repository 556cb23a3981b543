"""One inference path: evaluation predicts through the Predictor, and one pooling rule.

``lgfn evaluate`` hands the predictor clips already decoded into the feature cache; a user's
file goes through decoding first. For audio the cache holds exactly (8-bit PCM at the model's
rate: float16 stores it without rounding), both must give the same track outputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from lgfn_model.data.lyrics import read_lyrics_file
from lgfn_model.evaluation.predicting import Clip, load_clips, predict_examples
from lgfn_model.model.network import pool_windows
from lgfn_model.runtime.pooling import pool_track
from lgfn_model.runtime.predictor import Predictor, TrackInput
from lgfn_model.testing import write_tiny_checkpoint
from lgfn_model.training.cache import FeatureCache
from lgfn_model.training.datasets import load_examples

RATE = 16000
LRC = "[00:00.50]sunshine on my face\n[00:02.00]dancing all night long\n[00:04.00]we sing"


def test_pool_track_is_the_softmax_of_the_mean_window_logits() -> None:
    logits = np.array([[2.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0]], dtype=np.float32)
    pooled = pool_track(logits, np.array([0.5, -0.1]), np.array([1.0, 0.0]), np.ones((2, 3)))
    expected = np.exp([1.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(pooled.probabilities, expected / expected.sum(), rtol=1e-6)
    assert pooled.valence == pytest.approx(0.2)
    assert pooled.arousal == pytest.approx(0.5)
    assert pooled.gate_audio == 1.0


def test_pool_track_agrees_with_the_training_losses_pooling() -> None:
    """Training optimises what inference reports: network.pool_windows, then softmax."""
    generator = np.random.default_rng(0)
    logits = generator.normal(size=(5, 4)).astype(np.float32)
    valence = generator.uniform(-1, 1, size=5).astype(np.float32)
    gate = generator.uniform(0, 1, size=(5, 9)).astype(np.float32)
    index = torch.tensor([0, 0, 1, 1, 1])
    trained = torch.softmax(pool_windows(torch.from_numpy(logits), index, 2), dim=-1)
    trained_valence = pool_windows(torch.from_numpy(valence), index, 2)
    for track, rows in enumerate((slice(0, 2), slice(2, 5))):
        pooled = pool_track(logits[rows], valence[rows], valence[rows], gate[rows])
        np.testing.assert_allclose(pooled.probabilities, trained[track].numpy(), atol=1e-6)
        assert pooled.valence == pytest.approx(float(trained_valence[track]), abs=1e-6)
        assert pooled.gate_audio == pytest.approx(float(gate[rows].mean()), abs=1e-6)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    rows = ["id,audio,lyrics,mood,split"]
    generator = np.random.default_rng(3)
    for n, seconds in enumerate((5.0, 3.0, 1.5)):
        # 8-bit PCM: every sample is k/128, exact in the cache's float16.
        samples = np.round(generator.uniform(-0.5, 0.5, int(seconds * RATE)) * 128) / 128
        soundfile.write(root / f"clip{n}.wav", samples, RATE, subtype="PCM_U8")
        lyrics = ""
        if n == 0:
            (root / "clip0.lrc").write_text(LRC)
            lyrics = "clip0.lrc"
        rows.append(f"clip{n},clip{n}.wav,{lyrics},happy,test")
    (root / "words.lrc").write_text("[00:01.00]only words here\n[00:12.00]and more")
    rows.append("words,,words.lrc,sad,test")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root / "manifest.csv"


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    checkpoint = write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny")
    return Predictor.load(checkpoint, device="cpu", batch_size=4, workers=0, precision="fp32")


def _clips(manifest: Path, cache: FeatureCache) -> list[Clip]:
    return load_clips(load_examples(manifest), cache, workers=0)


def test_evaluation_gives_the_predictors_outputs_for_the_same_clips(
    manifest: Path, predictor: Predictor, tmp_path: Path
) -> None:
    cache = FeatureCache(tmp_path / "cache", sample_rate=RATE)
    clips = _clips(manifest, cache)
    assert [(c.has_audio, c.has_lyrics) for c in clips] == [
        (True, True),
        (True, False),
        (True, False),
        (False, True),
    ]
    evaluated = predict_examples(predictor, clips, cache)

    # A user's run: the files decoded by the predictor, lyrics read from the files.
    audio = [c for c in clips if c.has_audio]
    inputs = [
        TrackInput(Path(c.example.audio), c.lyrics, key=i)  # type: ignore[arg-type]
        for i, c in enumerate(audio)
    ]
    users = [r.prediction for r in predictor.predict_many(inputs)]
    labels = list(predictor.config.labels)
    for i, prediction in enumerate(users):
        assert prediction is not None
        want = [prediction.probabilities[label] for label in labels]
        np.testing.assert_allclose(evaluated["probs"][i], want, atol=1e-6)
        assert evaluated["p_valence"][i] == pytest.approx((prediction.valence + 1) / 2, abs=1e-6)
        assert evaluated["p_arousal"][i] == pytest.approx((prediction.arousal + 1) / 2, abs=1e-6)
        assert evaluated["gate"][i] == pytest.approx(prediction.gate_audio, abs=1e-6)
    assert evaluated["gate"][1] == 1.0 and evaluated["gate"][0] < 1.0  # lyrics moved it
    assert evaluated["gate"][3] == 0.0  # lyrics only: no audio to weigh


def test_lyrics_only_tracks_get_windows_over_their_lines(
    manifest: Path, predictor: Predictor
) -> None:
    lyrics = read_lyrics_file(str(manifest.parent / "words.lrc"))
    empty = np.zeros(0, dtype=np.float32)
    result = next(predictor.predict_many([TrackInput(Path("words"), lyrics, samples=empty)]))
    assert result.prediction is not None
    # Lines up to 12 s, plus 8 s: 20 s in the tiny model's 2 s windows.
    assert len(result.prediction.windows) == 10
    assert result.prediction.gate_audio == 0.0
    silent = next(predictor.predict_many([TrackInput(Path("nothing"), None, samples=empty)]))
    assert silent.error is not None and "no audio and no lyrics" in silent.error


def test_noise_is_added_to_the_samples_before_the_predictor(
    manifest: Path, predictor: Predictor, tmp_path: Path
) -> None:
    cache = FeatureCache(tmp_path / "cache", sample_rate=RATE)
    clips = [c for c in _clips(manifest, cache) if c.has_audio]
    clean = predict_examples(predictor, clips, cache)
    noisy = predict_examples(predictor, clips, cache, snr_db=0.0, seed=1)
    again = predict_examples(predictor, clips, cache, snr_db=0.0, seed=1)
    np.testing.assert_array_equal(noisy["probs"], again["probs"])
    assert not np.allclose(noisy["probs"], clean["probs"])


def test_compare_shares_the_lyrics_encoder_only_when_it_computes_alike(
    predictor: Predictor, tmp_path: Path
) -> None:
    other = write_tiny_checkpoint(tmp_path / "other", seed=1)
    same = Predictor.load(other, device="cpu", workers=0, precision="fp32")
    assert same.share_text_encoder(predictor)
    assert same.text_encoder is predictor.text_encoder
    bf16 = Predictor.load(other, device="cpu", workers=0, precision="bf16")
    assert not bf16.share_text_encoder(predictor)
