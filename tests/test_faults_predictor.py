"""Fault suite, model side: GPU out-of-memory and long lyrics, on the CPU.

The out-of-memory error is injected where CUDA would raise it (the model's forward), with
the same exception type (``torch.OutOfMemoryError``); everything else (decoding, batching,
the fallback model built from the weights) runs for real.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from audio_factory import make_audio_file

from lgfn_model.data.lyrics import parse_lrc
from lgfn_model.runtime.predictor import Predictor, TrackInput
from lgfn_model.testing import write_tiny_checkpoint

LRC = "[00:00.50]sunshine on my face\n[00:02.00]dancing all night long\n[00:04.00]we sing"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[TrackInput]:
    folder = tmp_path_factory.mktemp("songs")
    # 7 s and 5 s of audio in 2 s windows: 4 + 3 windows, one batch of 7 at batch_size 16.
    first = make_audio_file(folder / "a.flac", seconds=7.0, kind="chord")
    second = make_audio_file(folder / "b.mp3", seconds=5.0, kind="noise")
    return [TrackInput(first, parse_lrc(LRC), key=0), TrackInput(second, None, key=1)]


def _reference(checkpoint: Path, inputs: list[TrackInput]) -> list[Any]:
    predictor = Predictor.load(checkpoint, device="cpu", batch_size=16, workers=0)
    return [r.prediction for r in predictor.predict_many(inputs)]


def _oom_above(predictor: Predictor, limit: int, sizes: list[int]) -> None:
    """Make the loaded model fail like a full GPU on batches of more than ``limit`` windows."""
    real = predictor.model.forward

    def forward(waveforms: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        sizes.append(int(waveforms.shape[0]))
        if waveforms.shape[0] > limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(waveforms, *args, **kwargs)

    predictor.model.forward = forward  # type: ignore[method-assign]


def _same(a: Any, b: Any) -> None:
    assert a is not None and b is not None
    for mood, value in a.probabilities.items():
        assert b.probabilities[mood] == pytest.approx(value, abs=1e-5)
    assert b.valence == pytest.approx(a.valence, abs=1e-5)
    assert b.gate_audio == pytest.approx(a.gate_audio, abs=1e-5)
    assert [w.start for w in b.windows] == [w.start for w in a.windows]


def test_out_of_memory_retries_in_smaller_batches(
    checkpoint: Path, inputs: list[TrackInput]
) -> None:
    expected = _reference(checkpoint, inputs)
    predictor = Predictor.load(checkpoint, device="cpu", batch_size=16, workers=0)
    warnings: list[str] = []
    predictor.warn = warnings.append
    sizes: list[int] = []
    _oom_above(predictor, 2, sizes)

    results = list(predictor.predict_many(inputs))

    assert [r.input.key for r in results] == [0, 1] and all(r.ok for r in results)
    for want, got in zip(expected, results, strict=True):
        _same(want, got.prediction)  # same windows, same order, same numbers
    assert sizes[0] == 7 and max(s for s in sizes if s <= 2) == 2  # 7 -> 3 + 4 -> ... -> 2s
    assert predictor.stats.oom_retries >= 3 and predictor.stats.cpu_windows == 0
    assert len(warnings) == 1 and "retrying in smaller batches" in warnings[0]


def test_a_window_that_never_fits_runs_on_the_cpu(
    checkpoint: Path, inputs: list[TrackInput]
) -> None:
    expected = _reference(checkpoint, inputs)
    predictor = Predictor.load(checkpoint, device="cpu", batch_size=16, workers=0)
    warnings: list[str] = []
    predictor.warn = warnings.append
    sizes: list[int] = []
    _oom_above(predictor, 0, sizes)  # nothing fits "on the GPU"

    results = list(predictor.predict_many(inputs))

    assert all(r.ok for r in results)
    for want, got in zip(expected, results, strict=True):
        _same(want, got.prediction)
    assert predictor.stats.cpu_windows == 7
    # One warning for the split, then one per track (not one per window), naming the file.
    assert len(warnings) == 3
    assert [w.split(":")[0] for w in warnings[1:]] == [str(i.audio) for i in inputs]
    assert all("out of memory" in w and "\n" not in w for w in warnings)


def test_other_model_errors_are_not_swallowed(checkpoint: Path, inputs: list[TrackInput]) -> None:
    predictor = Predictor.load(checkpoint, device="cpu", batch_size=16, workers=0)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a real bug")

    predictor.model.forward = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="a real bug"):
        list(predictor.predict_many(inputs))


def test_lyrics_beyond_the_encoder_limit(checkpoint: Path, inputs: list[TrackInput]) -> None:
    """10,000 timed lines, one of them 1 MB long: the model reads its first max_lines lines,
    each cut to a sane length, and predicts as usual."""
    predictor = Predictor.load(checkpoint, device="cpu", batch_size=16, workers=0)
    lines = [
        f"[{i // 6000:02d}:{(i // 100) % 60:02d}.{i % 100:02d}]word {i}" for i in range(10_000)
    ]
    lines[3] = "[00:00.03]" + "la " * 350_000
    lyrics = parse_lrc("\n".join(lines))
    assert len(lyrics.lines) == 10_000 and max(len(t) for t in lyrics.texts) <= 500
    prediction = predictor.predict(inputs[0].audio, lyrics)
    assert len(prediction.lyrics_lines) == predictor.config.max_lines
    assert 0 < prediction.gate_audio < 1
