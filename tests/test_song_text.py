"""``song_text``: the whole lyrics as one more, untimed line, in training and in prediction."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from lyrics_training import record_lyrics, train_tiny

from lgfn_model.data.lyrics import parse_lyrics
from lgfn_model.model.config import ConfigError, LGFNConfig
from lgfn_model.model.network import LGFN, TrackLines, stack_lines
from lgfn_model.testing import tiny_config


def _lines(seed: int, n: int, song: bool) -> TrackLines:
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(n, 384, generator=generator)
    lines = TrackLines.timed(embeddings, [None] * n, None)
    if song:
        lines.song = torch.randn(384, generator=generator)
    return lines


def test_a_song_text_model_reads_the_whole_text_and_shows_only_the_lines() -> None:
    torch.manual_seed(0)
    model = LGFN(tiny_config(song_text=True)).eval()
    waves = torch.randn(3, model.config.audio.window_samples)
    starts = torch.zeros(3)
    tracks = [(_lines(1, 5, song=True), 2), (_lines(2, 3, song=True), 1)]
    batch = stack_lines(tracks, 384)
    assert batch is not None and batch.song is not None and batch.song_mask is not None
    assert batch.song_mask.tolist() == [True, True, True]
    with torch.no_grad():
        out = model(waves, starts, batch)
        # The attention shown (explain pictures) is over the lines only: 5 columns, not 6.
        assert out.attention.shape == (3, model.config.frames_per_window, 5)
        other = dataclasses.replace(batch, song=torch.randn_like(batch.song))
        moved = model(waves, starts, other)
        assert not torch.allclose(out.mood_logits, moved.mood_logits)
        # A model without song_text never reads it: the same outputs whatever the song.
        model.config.song_text = False
        plain = model(waves, starts, batch)
        assert torch.equal(plain.mood_logits, model(waves, starts, other).mood_logits)
        without = stack_lines([(_lines(1, 5, song=False), 2), (_lines(2, 3, False), 1)], 384)
        assert without is not None and without.song is None
        assert torch.equal(plain.mood_logits, model(waves, starts, without).mood_logits)


@pytest.mark.parametrize("option", ["song_text", "line_context"])
def test_options_that_read_whole_texts_need_an_encoder_that_can(option: str) -> None:
    data = tiny_config(**{option: True}).to_dict()
    assert getattr(LGFNConfig.from_dict(data), option) is True
    with pytest.raises(ConfigError, match=f"{option} needs a text encoder"):
        LGFNConfig.from_dict({**data, "text_encoder": "all-minilm-l6-v2"})
    with pytest.raises(ConfigError, match=option):
        LGFNConfig.from_dict({**data, option: "yes"})
    old = tiny_config().to_dict()
    del old[option]  # a checkpoint written before the option reads as without it
    assert getattr(LGFNConfig.from_dict(old), option) is False


def test_training_and_prediction_give_the_model_the_same_whole_text_vector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lgfn_model.runtime.predictor import Predictor
    from lgfn_model.training.cache import FeatureCache
    from lgfn_model.training.song_text import load_song_text

    seen = record_lyrics(monkeypatch)
    model, settings = train_tiny(tmp_path, song_text=True)
    assert model.config.song_text is True
    # Every window that has lines has the whole text (drop_lyrics takes both away at once).
    assert seen and all(b.song is not None for b in seen)
    assert all(torch.equal(b.song_mask, b.mask.any(-1)) for b in seen)

    cache = FeatureCache(settings.cache)
    stored = load_song_text(cache, tmp_path / "happy0.txt", "multilingual-e5-small")
    assert stored is not None and stored.shape == (384,)
    assert abs(float(np.linalg.norm(stored)) - 1.0) < 1e-5

    seen.clear()
    predictor = Predictor.load(settings.out, device="cpu", precision="fp32", workers=0)
    lyrics = parse_lyrics((tmp_path / "happy0.txt").read_text(encoding="utf-8"))
    predictor.predict(tmp_path / "happy0.flac", lyrics)
    assert seen and seen[0].song is not None
    # The predictor's vector of the same file is the one training cached.
    assert np.allclose(seen[0].song[0].numpy(), stored, atol=1e-4)
    assert not np.allclose(
        stored, load_song_text(cache, tmp_path / "sad1.txt", "multilingual-e5-small"), atol=1e-2
    )


def test_explain_says_how_much_attention_the_whole_text_drew(tmp_path: Path) -> None:
    from lgfn_model.explain import TrackInfo, build_timeline, text_report
    from lgfn_model.runtime.predictor import Predictor

    _, settings = train_tiny(tmp_path, song_text=True)
    predictor = Predictor.load(settings.out, device="cpu", precision="fp32", workers=0)
    lyrics = parse_lyrics((tmp_path / "happy0.txt").read_text(encoding="utf-8"))
    prediction = predictor.predict(tmp_path / "happy0.flac", lyrics)
    # The model's rows over the lines alone fall short of 1 by what the whole text drew.
    rows = np.array([frame for window in prediction.windows for frame in window.attention])
    assert rows.shape[1] == len(lyrics.lines) and (rows.sum(axis=1) < 1 - 1e-4).all()
    timeline = build_timeline(prediction)
    # The timeline averages over its time cells, which overlapping windows weigh a little
    # differently from a plain mean over frames: close, not equal.
    assert timeline.whole_text_share == pytest.approx(1 - rows.sum(axis=1).mean(), abs=1e-3)
    assert timeline.line_shares.sum() == pytest.approx(1.0)
    report = text_report(timeline, TrackInfo("Song"))
    assert f"drew {timeline.whole_text_share:.1%} of the attention" in report
