"""``line_context``: lyric lines read in the context of the whole text, in training and in
prediction."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from audio_factory import make_audio_file

from lgfn_model.data.lyrics import parse_lyrics
from lgfn_model.model.config import ConfigError, LGFNConfig
from lgfn_model.model.network import LGFN
from lgfn_model.testing import tiny_config

VERSES = {
    "happy": "sunshine on my face\nwe dance until the morning\nnothing can stop us now",
    "sad": "the rain keeps falling down\nI miss the way you held me\nempty rooms and empty hands",
}


def test_line_context_needs_an_encoder_that_reads_whole_texts() -> None:
    data = tiny_config(line_context=True).to_dict()
    assert LGFNConfig.from_dict(data).line_context is True
    with pytest.raises(ConfigError, match="line_context needs a text encoder"):
        LGFNConfig.from_dict({**data, "text_encoder": "all-minilm-l6-v2"})
    with pytest.raises(ConfigError, match="line_context"):
        LGFNConfig.from_dict({**data, "line_context": 1})
    old = tiny_config().to_dict()
    del old["line_context"]  # a checkpoint written before the option reads as without it
    assert LGFNConfig.from_dict(old).line_context is False


def _manifest(folder: Path) -> Path:
    rows = ["id,audio,lyrics,mood,split"]
    for n, (mood, verse) in enumerate([*VERSES.items(), *VERSES.items()]):
        name = f"{mood}{n}"
        make_audio_file(folder / f"{name}.flac", seconds=3.0, kind="chord", seed=n)
        (folder / f"{name}.txt").write_text(verse + f"\nverse {n}\n", encoding="utf-8")
        rows.append(f"{name},{name}.flac,{name}.txt,{mood},train")
    manifest = folder / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


def test_training_and_prediction_give_the_model_the_same_lines_read_in_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lgfn_model.runtime.predictor import Predictor
    from lgfn_model.training.cache import FeatureCache
    from lgfn_model.training.lyric_inputs import in_context_name
    from lgfn_model.training.train import TrainSettings, train

    torch.set_num_threads(1)
    config = dataclasses.asdict(tiny_config(line_context=True, song_text=True))
    config.pop("version")
    config["audio"] = tiny_config().audio
    settings = TrainSettings(
        data=_manifest(tmp_path),
        out=tmp_path / "model",
        cache=tmp_path / "cache",
        epochs=1,
        batch_size=4,
        workers=0,
        device="cpu",
        config_overrides=config,
    )
    seen: list[Any] = []
    forward = LGFN.forward

    def recording(self: LGFN, *args: Any, **kwargs: Any) -> Any:
        lyrics = kwargs.get("lyrics", args[2] if len(args) > 2 else None)
        seen.append(lyrics)
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(LGFN, "forward", recording)
    model, _ = train(settings)
    assert model.config.line_context is True and model.config.song_text is True
    trained_on = [b for b in seen if b is not None]
    assert trained_on and all(b.song is not None for b in trained_on)

    cache = FeatureCache(tmp_path / "cache")
    encoder = "multilingual-e5-small"
    stored = cache.load_lyrics(tmp_path / "happy0.txt", in_context_name(encoder))
    assert stored.embeddings.shape == (4, 384) and stored.song is not None
    # Only the in-context entries were made: the lines alone and the song cache stay empty.
    assert not cache.lyrics_file(tmp_path / "happy0.txt", encoder).exists()
    assert not (tmp_path / "cache" / f"song-{encoder}").exists()

    seen.clear()
    predictor = Predictor.load(settings.out, device="cpu", precision="fp32", workers=0)
    lyrics = parse_lyrics((tmp_path / "happy0.txt").read_text(encoding="utf-8"))
    predictor.predict(tmp_path / "happy0.flac", lyrics)
    given = [b for b in seen if b is not None]
    assert given and given[0].song is not None
    # The predictor reads the same file's lines as training cached them (float16 there).
    lines = given[0].embeddings[0, : len(stored)].numpy()
    np.testing.assert_allclose(lines, stored.embeddings, atol=2e-3)
    np.testing.assert_allclose(given[0].song[0].numpy(), stored.song, atol=1e-4)
    # ... and not as it reads them alone.
    alone = predictor.text_encoder.encode(lyrics.texts).numpy()
    assert float((alone * lines).sum(-1).max()) < 0.99
