"""The lyrics read-out: its fit, how its votes join the network's, and where it is fitted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from lyrics_training import train_tiny

from lgfn_model.model.config import ConfigError, LGFNConfig
from lgfn_model.model.network import LGFN, TrackLines, stack_lines
from lgfn_model.testing import tiny_config
from lgfn_model.training.datasets import Example
from lgfn_model.training.lyrics_readout_fit import (
    ABSENT_CLASS_LOGIT,
    ReadoutFit,
    attach_readout,
    fit_logistic,
    fit_readout,
)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def test_the_binary_fit_finds_the_model_that_made_the_labels() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(20_000, 3))  # off centre and scaled: folding must undo it
    true_w, true_b = np.array([1.5, -2.0, 0.0]), 0.7
    y = (rng.random(20_000) < _sigmoid(x @ true_w + true_b)).astype(float)
    weight, bias = fit_logistic(x, y, np.ones(len(y)), strength=1e3, count=1)
    assert weight.shape == (1, 3) and bias.shape == (1,)
    assert np.allclose(weight[0], true_w, atol=0.1)
    assert bias[0] == pytest.approx(true_b, abs=0.3)


def test_the_penalty_pulls_towards_no_vote_and_weights_count_examples() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 2))
    y = (x[:, 0] > 0).astype(float)
    loose, _ = fit_logistic(x, y, np.ones(400), strength=10.0, count=1)
    tight, _ = fit_logistic(x, y, np.ones(400), strength=1e-4, count=1)
    assert abs(tight[0, 0]) < abs(loose[0, 0]) / 10
    # Doubling every example's weight is a penalty half as strong, not a different problem.
    doubled, _ = fit_logistic(x, y, np.full(400, 2.0), strength=0.05, count=1)
    halved, _ = fit_logistic(x, y, np.ones(400), strength=0.1, count=1)
    assert np.allclose(doubled, halved, atol=1e-4)


def test_a_mood_no_example_has_gets_no_chance() -> None:
    rng = np.random.default_rng(2)
    centres = np.array([[4.0, 0.0], [-4.0, 0.0], [0.0, 4.0]])
    classes = np.repeat([0, 1, 3], 100)  # no example of class 2
    x = centres[np.repeat([0, 1, 2], 100)] + rng.normal(size=(300, 2))
    weight, bias = fit_logistic(x, classes, np.ones(300), strength=1.0, count=4)
    assert weight.shape == (4, 2) and np.all(weight[2] == 0) and bias[2] == ABSENT_CLASS_LOGIT
    predicted = (x @ weight.T + bias).argmax(axis=1)
    assert (predicted == classes).mean() > 0.9


def _example(index: int, dataset: str, mood: int | None, valence: float | None) -> Example:
    return Example(
        id=f"{dataset}:{index}",
        dataset=dataset,
        audio=None,
        lyrics=Path(f"{index}.txt"),
        mood=mood,
        valence=valence,
        arousal=None if mood is None else (1.0 if mood in (0, 1) else -1.0),
        label="x",
    )


def test_the_readout_fit_reads_labels_per_example_and_weighs_datasets() -> None:
    rng = np.random.default_rng(3)
    rows = []
    for index in range(200):
        mood = index % 4
        vector = rng.normal(size=8)
        vector[mood] += 3.0
        valence = 1.0 if mood in (0, 3) else -1.0
        dataset = "nju" if (index // 4) % 2 else "mirex"
        rows.append((_example(index, dataset, mood, valence), vector))
    # A valence-only example (a MIREX-like cluster 2 or 4) teaches valence, not mood.
    rows.append((_example(999, "mirex", None, 1.0), rng.normal(size=8)))
    fit = fit_readout(rows, {"nju": 0.1}, strength=1.0)
    assert fit.examples == {"mood": 200, "valence": 201, "arousal": 200}
    x = np.stack([v for _, v in rows[:200]])
    moods = np.array([e.mood for e, _ in rows[:200]])
    assert ((x @ fit.mood_weight.T + fit.mood_bias).argmax(1) == moods).mean() > 0.9
    without = fit_readout(rows, {"nju": 0.0})  # 0 leaves a set out
    assert without.examples["mood"] == 100
    with pytest.raises(ValueError, match="names mirx: no training example with lyrics"):
        fit_readout(rows, {"mirx": 2.0})
    with pytest.raises(ValueError, match="mood vote needs examples with lyrics of two kinds"):
        fit_readout([(e, v) for e, v in rows if e.mood in (None, 1)])


def _random_fit(seed: int, dim: int = 384) -> ReadoutFit:
    rng = np.random.default_rng(seed)
    return ReadoutFit(
        mood_weight=rng.normal(scale=0.5, size=(4, dim)),
        mood_bias=rng.normal(size=4),
        affect_weight=rng.normal(scale=0.5, size=(2, dim)),
        affect_bias=rng.normal(size=2),
        examples={"mood": 1, "valence": 1, "arousal": 1},
    )


def _song_batch(seed: int) -> tuple[torch.Tensor, torch.Tensor, object]:
    generator = torch.Generator().manual_seed(seed)
    with_song = TrackLines.timed(torch.randn(3, 384, generator=generator), [None] * 3, None)
    with_song.song = torch.randn(384, generator=generator)
    without = TrackLines.timed(torch.randn(2, 384, generator=generator), [None] * 2, None)
    batch = stack_lines([(with_song, 2), (without, 1), (None, 1)], 384)
    samples = tiny_config().audio.window_samples
    return torch.randn(4, samples, generator=generator), torch.zeros(4), batch


def test_the_votes_join_the_networks_log_odds_only_where_there_is_a_whole_text() -> None:
    torch.manual_seed(0)
    model = LGFN(tiny_config(song_text=True)).eval()
    waves, starts, batch = _song_batch(1)
    with torch.no_grad():
        before = model(waves, starts, batch)
        fit = _random_fit(4)
        fusion = (0.75, 0.5, 0.1)
        attach_readout(model, fit, fusion)
        assert model.config.lyrics_readout is True
        after = model(waves, starts, batch)
    song = batch.song[0].double().numpy()
    mood_vote = song @ fit.mood_weight.T + fit.mood_bias
    affect_vote = song @ fit.affect_weight.T + fit.affect_bias
    for window in (0, 1):  # the track with a whole text
        expected = np.log(torch.softmax(before.mood_logits[window], -1).double().numpy())
        expected = expected + fusion[0] * mood_vote
        expected = np.exp(expected - expected.max())
        got = torch.softmax(after.mood_logits[window].double(), -1).numpy()
        assert np.allclose(got, expected / expected.sum(), atol=1e-5)
        # P(valence > 0) in log-odds: the network's plus the weighted vote.
        p_before = (before.valence[window].double().item() + 1) / 2
        p_after = (after.valence[window].double().item() + 1) / 2
        gained = np.log(p_after / (1 - p_after)) - np.log(p_before / (1 - p_before))
        assert gained == pytest.approx(fusion[1] * affect_vote[0], abs=1e-3)
    for window in (2, 3):  # lines but no whole text; no lyrics at all
        assert torch.equal(after.mood_logits[window], before.mood_logits[window])
        assert torch.equal(after.arousal[window], before.arousal[window])
    # The embedding carries the weighted mood votes, so one linear head of it is the mood.
    assert after.embedding.shape == (4, model.config.d_model + 4)
    head = model.mood_head
    logits = after.embedding[:, :-4] @ head.weight.T + head.bias + after.embedding[:, -4:]
    assert torch.allclose(logits, after.mood_logits, atol=1e-5)
    assert torch.equal(after.embedding[2:, -4:], torch.zeros(2, 4))


def test_before_it_is_fitted_a_readout_changes_nothing() -> None:
    torch.manual_seed(0)
    plain = LGFN(tiny_config(song_text=True)).eval()
    torch.manual_seed(0)
    unfitted = LGFN(tiny_config(song_text=True, lyrics_readout=True)).eval()
    waves, starts, batch = _song_batch(2)
    with torch.no_grad():
        a, b = plain(waves, starts, batch), unfitted(waves, starts, batch)
    assert torch.equal(a.mood_logits, b.mood_logits) and torch.equal(a.valence, b.valence)


def test_a_readout_needs_the_whole_text() -> None:
    data = tiny_config(song_text=True, lyrics_readout=True).to_dict()
    assert LGFNConfig.from_dict(data).embedding_dim == data["d_model"] + 4
    with pytest.raises(ConfigError, match="lyrics_readout reads the whole text's vector"):
        LGFNConfig.from_dict({**data, "song_text": False})
    old = tiny_config().to_dict()
    del old["lyrics_readout"]  # a checkpoint written before the option reads as without it
    assert LGFNConfig.from_dict(old).lyrics_readout is False
    with pytest.raises(ValueError, match="only a model trained with song_text"):
        attach_readout(LGFN(tiny_config()), _random_fit(0))


def test_training_fits_it_and_the_shipped_head_reads_the_embedding(tmp_path: Path) -> None:
    from lgfn_model.data.lyrics import parse_lyrics
    from lgfn_model.runtime.checkpoint import checkpoint_metadata
    from lgfn_model.runtime.personal_head import read_mood_head
    from lgfn_model.runtime.predictor import Predictor

    model, settings = train_tiny(tmp_path, song_text=True, readout=True)
    assert model.config.lyrics_readout is True
    described = checkpoint_metadata(settings.out)["lyrics_readout"]
    assert described["examples"] == {"mood": 4, "valence": 4, "arousal": 4}
    assert described["fusion"] == {"mood": 0.75, "valence": 0.75, "arousal": 0.1}
    predictor = Predictor.load(settings.out, device="cpu", precision="fp32", workers=0)
    head = read_mood_head(settings.out)
    for name in ("happy0", "sad1"):
        lyrics = parse_lyrics((tmp_path / f"{name}.txt").read_text(encoding="utf-8"))
        prediction = predictor.predict(tmp_path / f"{name}.flac", lyrics)
        assert any(prediction.embedding[-4:])  # the words voted
        expected = [prediction.probabilities[m] for m in predictor.config.labels]
        got = head.probabilities(np.asarray([prediction.embedding]))[0]
        np.testing.assert_allclose(got, expected, atol=1e-5)
        silent = predictor.predict(tmp_path / f"{name}.flac", None)
        assert not any(silent.embedding[-4:])


def _lgfn(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lgfn_model.cli", *args], capture_output=True, text=True, timeout=600
    )


def test_lgfn_readout_fits_on_the_checkpoints_own_examples(tmp_path: Path) -> None:
    model, settings = train_tiny(tmp_path, song_text=True)
    out = tmp_path / "with-readout"
    common = ["--data", str(settings.data), "--cache", str(settings.cache)]
    typo = _lgfn("readout", *common, "--checkpoint", str(settings.out), "--out", str(out),
                 "--readout-weight", "nju=0.1")  # fmt: skip
    assert typo.returncode == 2 and "no training example with lyrics is from it" in typo.stderr
    assert not out.exists()
    done = _lgfn("readout", *common, "--checkpoint", str(settings.out), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "lyrics read-out" in done.stdout
    document = json.loads((out / "config.json").read_text())
    assert document["config"]["lyrics_readout"] is True
    assert document["config"]["version"] == f"{model.config.version}-readout"
    assert document["metadata"]["lyrics_readout"]["examples"]["mood"] == 4
    assert document["metadata"]["trained_on"] == "heldout"
    assert document["metadata"]["lyrics_readout"]["added_to"] == model.config.version
    # The network's own weights are the checkpoint's, untouched.
    from lgfn_model.runtime.checkpoint import load_checkpoint

    fitted, source = load_checkpoint(out), load_checkpoint(settings.out)
    assert torch.equal(fitted.mood_head.weight, source.mood_head.weight)
    assert fitted.lyrics_readout is not None and float(fitted.lyrics_readout.fusion[0]) == 0.75
    # A folder that holds something is not written over.
    again = _lgfn("readout", *common, "--checkpoint", str(settings.out), "--out", str(out))
    assert again.returncode == 2 and "is not empty" in again.stderr


def test_lgfn_readout_refuses_a_model_without_the_whole_text(tmp_path: Path) -> None:
    _, settings = train_tiny(tmp_path)
    out = tmp_path / "with-readout"
    done = _lgfn(
        "readout", "--data", str(settings.data), "--cache", str(settings.cache),
        "--checkpoint", str(settings.out), "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "trained with song_text" in done.stderr
    assert not (out / "config.json").exists()


def test_the_split_must_be_the_one_the_checkpoint_records(tmp_path: Path) -> None:
    from lgfn_model.training.trained_split import trained_examples

    _, settings = train_tiny(tmp_path)
    from lgfn_model.runtime.checkpoint import checkpoint_metadata

    metadata = checkpoint_metadata(settings.out)
    assert [e.id for e in trained_examples(metadata, settings.data)]
    with pytest.raises(ValueError, match="is not the one the checkpoint records"):
        trained_examples({**metadata, "split_description": "another deal"}, settings.data)
    with pytest.raises(ValueError, match="does not record which split"):
        trained_examples({}, settings.data)


def test_training_refuses_a_readout_weight_of_no_dataset_before_it_trains(tmp_path: Path) -> None:
    import dataclasses

    from lgfn_model.training.train import train

    _, settings = train_tiny(tmp_path, song_text=True)
    settings = dataclasses.replace(
        settings, out=tmp_path / "again", lyrics_readout=True, readout_weights={"mirx": 2.0}
    )
    with pytest.raises(ValueError, match="--readout-weight mirx=2: no training examples"):
        train(settings)
    assert not (tmp_path / "again").exists()
