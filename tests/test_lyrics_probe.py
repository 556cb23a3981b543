"""tools/lyrics_probe.py and tools/stack_features.py: the whole lyrics text as one vector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lgfn_model.training.cache import FeatureCache
from lgfn_model.training.datasets import Example


def test_whole_text_vectors_read_the_lines_together_and_sit_beside_the_mean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lgfn_model.text import load_text_encoder
    from lgfn_model.training.song_text import load_song_text
    from tools.lyrics_probe import features
    from tools.stack_features import clip_features, lyrics_whole

    songs = {"sad.txt": "I cried all night\nyou left me alone\n", "glad.txt": "Sunshine today\n"}
    files = []
    for name, text in songs.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        files.append(tmp_path / name)
    examples = [Example(f"t:{i}", "t", None, f, 0, 1.0, 1.0) for i, f in enumerate(files)]
    cache = FeatureCache(tmp_path / "cache")
    cache.ensure_lyrics(files, "fake", encode=lambda lines: np.ones((len(lines), 3)))

    whole = lyrics_whole(examples, cache)
    encoder = load_text_encoder("multilingual-e5-small", cache_size=0)
    text = "I cried all night\nyou left me alone"
    expected = encoder.encode_documents([text]).numpy()[0]  # what a song_text model reads
    np.testing.assert_allclose(whole["t:0"], expected, atol=1e-6)
    assert whole["t:0"].shape == (384,) and abs(np.linalg.norm(whole["t:0"]) - 1) < 1e-4
    np.testing.assert_array_equal(
        whole["t:0"], load_song_text(cache, files[0], "multilingual-e5-small")
    )
    lines = encoder.encode(["I cried all night", "you left me alone"]).numpy().mean(axis=0)
    assert float(lines @ whole["t:0"]) / np.linalg.norm(lines) < 0.999  # read in context

    both = features(examples, cache, "fake", spread=False, lexicon="off", text="both")
    np.testing.assert_allclose(both["t:0"], np.concatenate([np.ones(3), whole["t:0"]]))
    only = features(examples, cache, "fake", spread=False, lexicon="off", text="whole")
    np.testing.assert_allclose(only["t:1"], whole["t:1"])

    import lgfn_model.text as text_module

    def no_encoder(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the whole-text vectors should come from the cache")

    monkeypatch.setattr(text_module, "load_text_encoder", no_encoder)
    again = clip_features("lyrics-whole", examples, cache)
    assert sorted(again) == ["t:0", "t:1"]
    np.testing.assert_array_equal(again["t:0"], whole["t:0"])
