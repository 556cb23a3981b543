"""A tiny real training on songs with lyrics, recording what the model was given: shared by the
tests of the model's lyric inputs (``song_text``, ``line_context``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch
from audio_factory import make_audio_file

from lgfn_model.model.network import LGFN, LyricsBatch
from lgfn_model.testing import tiny_config

VERSES = {
    "happy": "sunshine on my face\nwe dance until the morning\nnothing can stop us now",
    "sad": "the rain keeps falling down\nI miss the way you held me\nempty rooms and empty hands",
}


def write_manifest(folder: Path) -> Path:
    """Four 3 s songs (happy0, sad1, happy2, sad3: .flac and .txt) and their manifest."""
    rows = ["id,audio,lyrics,mood,split"]
    for n, (mood, verse) in enumerate([*VERSES.items(), *VERSES.items()]):
        name = f"{mood}{n}"
        make_audio_file(folder / f"{name}.flac", seconds=3.0, kind="chord", seed=n)
        (folder / f"{name}.txt").write_text(verse + f"\nverse {n}\n", encoding="utf-8")
        rows.append(f"{name},{name}.flac,{name}.txt,{mood},train")
    manifest = folder / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


def record_lyrics(monkeypatch: pytest.MonkeyPatch) -> list[LyricsBatch]:
    """Every lyrics batch the model is given from now on (training or prediction)."""
    seen: list[LyricsBatch] = []
    forward = LGFN.forward

    def recording(self: LGFN, *args: Any, **kwargs: Any) -> Any:
        lyrics = kwargs.get("lyrics", args[2] if len(args) > 2 else None)
        if lyrics is not None:
            seen.append(lyrics)
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(LGFN, "forward", recording)
    return seen


def train_tiny(folder: Path, readout: bool = False, **config_fields: Any) -> tuple[LGFN, Any]:
    """One epoch of a tiny model with ``config_fields`` on ``write_manifest``'s songs (with
    ``readout``, a lyrics read-out fitted after it); the model and its settings
    (``settings.out`` is the checkpoint, ``settings.cache`` the cache)."""
    from lgfn_model.training.train import TrainSettings, train

    torch.set_num_threads(1)
    config = dataclasses.asdict(tiny_config(**config_fields))
    config.pop("version")
    config["audio"] = tiny_config().audio
    settings = TrainSettings(
        data=write_manifest(folder),
        out=folder / "model",
        cache=folder / "cache",
        epochs=1,
        batch_size=4,
        workers=0,
        device="cpu",
        config_overrides=config,
        lyrics_readout=readout,
    )
    model, _ = train(settings)
    return model, settings
