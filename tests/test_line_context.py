"""``line_context``: lyric lines read in the context of the whole text, in training and in
prediction (its config rule is tested with song_text's in tests/test_song_text.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lyrics_training import record_lyrics, train_tiny

from lgfn_model.data.lyrics import parse_lyrics


def test_training_and_prediction_give_the_model_the_same_lines_read_in_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lgfn_model.runtime.predictor import Predictor
    from lgfn_model.training.cache import FeatureCache
    from lgfn_model.training.lyric_inputs import in_context_name

    seen = record_lyrics(monkeypatch)
    model, settings = train_tiny(tmp_path, line_context=True, song_text=True)
    assert model.config.line_context is True and model.config.song_text is True
    assert seen and all(b.song is not None for b in seen)

    cache = FeatureCache(settings.cache)
    encoder = "multilingual-e5-small"
    stored = cache.load_lyrics(tmp_path / "happy0.txt", in_context_name(encoder))
    assert stored.embeddings.shape == (4, 384) and stored.song is not None
    # Only the in-context entries were made: the lines alone and the song cache stay empty.
    assert not cache.lyrics_file(tmp_path / "happy0.txt", encoder).exists()
    assert not (settings.cache / f"song-{encoder}").exists()

    seen.clear()
    predictor = Predictor.load(settings.out, device="cpu", precision="fp32", workers=0)
    lyrics = parse_lyrics((tmp_path / "happy0.txt").read_text(encoding="utf-8"))
    predictor.predict(tmp_path / "happy0.flac", lyrics)
    assert seen and seen[0].song is not None
    # The predictor reads the same file's lines as training cached them (float16 there).
    lines = seen[0].embeddings[0, : len(stored)].numpy()
    np.testing.assert_allclose(lines, stored.embeddings, atol=2e-3)
    np.testing.assert_allclose(seen[0].song[0].numpy(), stored.song, atol=1e-4)
    # ... and not as it reads them alone.
    alone = predictor.text_encoder.encode(lyrics.texts).numpy()
    assert float((alone * lines).sum(-1).max()) < 0.99
