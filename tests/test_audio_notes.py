"""mpg123's notes (printed by libsndfile's MP3 decoder straight to file descriptor 2) never
reach the terminal; anything else written there meanwhile still does."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile

from lgfn_model.data import audio
from lgfn_model.data.audio import decode_audio


def _cut_mp3(path: Path) -> Path:
    rate = 44100
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(rate * 6) / rate)
    soundfile.write(path, tone.astype(np.float32), rate, format="MP3", subtype="MPEG_LAYER_III")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the Xing header now overstates the stream
    return path


def test_xing_warning_is_not_printed(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path = _cut_mp3(tmp_path / "cut.mp3")
    with audio._mpg123_notes_hidden(Path("unfiltered.wav")):  # not MPEG: nothing filtered
        soundfile.read(path)
    assert "Xing stream size off" in capfd.readouterr().err  # libsndfile does print it
    decoded = decode_audio(path)
    assert decoded.samples.size > 16000
    assert capfd.readouterr().err == ""


def test_other_output_on_fd_2_is_passed_on(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _cut_mp3(tmp_path / "cut.mp3")
    real = audio._read_soundfile

    def noisy(*args: object) -> object:
        os.write(2, b"something else\n")
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(audio, "_read_soundfile", noisy)
    decode_audio(path)
    assert capfd.readouterr().err == "something else\n"
