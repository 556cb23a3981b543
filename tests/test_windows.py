"""Cutting decoded tracks into analysis windows: whole-track coverage, properties."""

from __future__ import annotations

import numpy as np
from audio_factory import make_audio_file
from hypothesis import given, settings
from hypothesis import strategies as st

from lgfn_model.data.audio import decode_audio
from lgfn_model.data.windows import cut_windows
from lgfn_model.model.config import AudioConfig


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 5000), sample_rate=st.sampled_from([100, 1000]), seconds=st.floats(0.1, 2))
def test_windows_cover_every_sample_in_order(n: int, sample_rate: int, seconds: float) -> None:
    audio = AudioConfig(sample_rate=sample_rate, window_seconds=seconds)
    size = audio.window_samples
    samples = np.arange(1, n + 1, dtype=np.float32)  # non-zero, so padding is visible
    windows, starts = cut_windows(samples, audio)
    assert windows.dtype == np.float32 and windows.shape[1] == size
    offsets = np.rint(starts * sample_rate).astype(int)
    covered = np.zeros(n, dtype=bool)
    for window, offset in zip(windows, offsets, strict=True):
        real = window[: max(0, min(size, n - offset))]
        np.testing.assert_array_equal(real, samples[offset : offset + len(real)])
        covered[offset : offset + len(real)] = True
    assert covered.all()  # every sample is analysed
    assert np.all(np.diff(offsets) > 0)  # in order, no duplicate windows
    if n >= size:
        assert offsets[-1] + size == n  # the last window ends with the track: no padding
        assert len(windows) == -(-n // size)
    else:
        assert len(windows) == 1 and not windows[0, n:].any()  # short track: zero-padded once


def test_decode_then_cut(tmp_path) -> None:
    decoded = decode_audio(make_audio_file(tmp_path / "a.ogg", seconds=2.5))
    windows, starts = cut_windows(decoded.samples, AudioConfig(window_seconds=1.0))
    assert windows.shape == (3, 16000)
    np.testing.assert_allclose(starts, [0.0, 1.0, 1.5], atol=0.01)
