"""lgfn_model.data.audio: decoding every format to mono 16 kHz, window cutting, clear errors."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from audio_factory import FORMATS, make_audio_file, make_format_file

from lgfn_model.data import audio as audio_module
from lgfn_model.data.audio import AudioDecodeError, DecodedAudio, decode_audio

# Lossy codecs may add or drop a few ms at the edges; lossless ones are exact.
TOLERANCE = 0.03
LOSSLESS = {"flac", "wav", "aiff", "alac"}


def assert_mono_16k(decoded: DecodedAudio, seconds: float, tol: float = TOLERANCE) -> None:
    assert isinstance(decoded, DecodedAudio)
    assert decoded.sample_rate == 16000
    assert decoded.samples.dtype == np.float32
    assert decoded.samples.ndim == 1
    assert np.isfinite(decoded.samples).all()
    assert decoded.duration == pytest.approx(decoded.samples.size / 16000)
    assert decoded.duration == pytest.approx(seconds, abs=tol)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize("name", list(FORMATS))
def test_every_format_decodes(tmp_path, name):
    path = make_format_file(tmp_path, name, seconds=2.0)
    decoded = decode_audio(path)
    assert_mono_16k(decoded, 2.0, 0.0 if name in LOSSLESS else TOLERANCE)
    assert decoded.source_channels == 2
    assert decoded.source_sample_rate == (48000 if name == "opus" else 44100)
    # the two detuned 0.5-peak tones survive the downmix (rms ~0.25), not louder than they were
    assert 0.2 < rms(decoded.samples) < 0.36


@pytest.mark.parametrize("name", ["mp3", "aac", "opus", "flac"])
def test_one_second_file(tmp_path, name):
    decoded = decode_audio(make_format_file(tmp_path, name, seconds=1.0, kind="chord"))
    assert_mono_16k(decoded, 1.0)


@pytest.mark.parametrize("name", ["mp3", "flac", "aac", "ogg"])
def test_silent_file(tmp_path, name):
    decoded = decode_audio(make_format_file(tmp_path, name, seconds=1.0, kind="silence"))
    assert_mono_16k(decoded, 1.0)
    assert np.abs(decoded.samples).max() < 1e-3


@pytest.mark.parametrize("name", ["mp3", "flac", "ogg", "opus", "wav", "aac", "alac"])
def test_mono_source(tmp_path, name):
    decoded = decode_audio(make_format_file(tmp_path, name, seconds=1.0, channels=1))
    assert_mono_16k(decoded, 1.0)
    assert decoded.source_channels == 1
    assert rms(decoded.samples) > 0.25


@pytest.mark.parametrize("name", ["flac", "ogg", "opus", "wav", "aiff", "aac", "alac"])
def test_six_channels(tmp_path, name):
    decoded = decode_audio(make_format_file(tmp_path, name, seconds=1.0, channels=6))
    assert_mono_16k(decoded, 1.0)
    assert decoded.source_channels == 6
    assert rms(decoded.samples) > 0.1


@pytest.mark.parametrize(
    ("name", "rate"),
    [("mp3", 8000), ("flac", 8000), ("aac", 8000), ("wav", 192000), ("flac", 192000),
     ("alac", 192000), ("ogg", 192000)],
)  # fmt: skip
def test_odd_source_rates(tmp_path, name, rate):
    decoded = decode_audio(make_format_file(tmp_path, name, seconds=1.0, sample_rate=rate))
    assert_mono_16k(decoded, 1.0)
    assert decoded.source_sample_rate == rate


def test_other_target_rate_and_no_resampling(tmp_path):
    path = make_audio_file(tmp_path / "a.wav", seconds=1.0, sample_rate=22050, channels=1)
    same = decode_audio(path, sample_rate=22050)
    assert same.samples.size == 22050
    written, _ = soundfile.read(path, dtype="float32")
    np.testing.assert_array_equal(same.samples, written)
    other = decode_audio(path, sample_rate=8000)
    assert other.sample_rate == 8000
    assert other.samples.size == 8000


@pytest.mark.parametrize("name", ["flac", "mp3", "alac"])
def test_max_seconds(tmp_path, name):
    path = make_format_file(tmp_path, name, seconds=3.0)
    decoded = decode_audio(path, max_seconds=0.5)
    assert decoded.samples.size == 8000
    assert decoded.duration == pytest.approx(0.5)
    longer = decode_audio(path, max_seconds=10.0)
    assert longer.duration == pytest.approx(3.0, abs=TOLERANCE)


def test_pyav_path_matches_soundfile_path(tmp_path):
    path = make_audio_file(tmp_path / "a.flac", seconds=1.0, kind="chord")
    via_soundfile = decode_audio(path)
    via_pyav = audio_module._decode_pyav(path, 16000, None, b"", None)
    np.testing.assert_allclose(via_pyav.samples, via_soundfile.samples, atol=1e-4)


def test_downmix_is_channel_mean(tmp_path):
    x = (0.4 * np.sin(np.linspace(0, 200, 16000))).astype(np.float32)
    path = tmp_path / "lr.wav"
    soundfile.write(path, np.stack([x, -x], axis=1), 16000, subtype="FLOAT")
    assert np.abs(decode_audio(path).samples).max() < 1e-6  # opposite phases cancel
    soundfile.write(path, np.stack([x, np.zeros_like(x)], axis=1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(decode_audio(path).samples, x / 2, atol=1e-6)


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_integer_and_float_pcm_have_same_level(tmp_path, subtype):
    x = (0.5 * np.sin(np.linspace(0, 300, 16000))).astype(np.float32)
    path = tmp_path / f"{subtype}.wav"
    soundfile.write(path, x, 16000, subtype=subtype)
    np.testing.assert_allclose(decode_audio(path).samples, x, atol=1e-2)


@pytest.mark.parametrize("codec", ["alac", "aac"])
def test_integer_and_float_pcm_via_pyav(tmp_path, codec):
    decoded = decode_audio(make_audio_file(tmp_path / "a.m4a", seconds=1.0, codec=codec))
    assert 0.3 < np.abs(decoded.samples).max() < 0.6


def test_non_finite_samples_become_zero(tmp_path):
    x = np.full(1600, 0.25, dtype=np.float32)
    x[[10, 20, 30]] = [np.nan, np.inf, -np.inf]
    path = tmp_path / "bad.wav"
    soundfile.write(path, x, 16000, subtype="FLOAT")
    samples = decode_audio(path).samples
    assert np.isfinite(samples).all()
    assert samples[[10, 20, 30]].tolist() == [0.0, 0.0, 0.0]
    assert samples[0] == pytest.approx(0.25)


def test_loudness_is_not_clipped(tmp_path):
    path = tmp_path / "loud.wav"
    soundfile.write(path, np.full(1600, 1.5, dtype=np.float32), 16000, subtype="FLOAT")
    assert decode_audio(path).samples.max() == pytest.approx(1.5)


def test_module_is_torch_free():
    code = "import sys, lgfn_model.data.audio; sys.exit('torch' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0


# --------------------------------------------------------------------------- errors


def one_line_naming(exc: AudioDecodeError, name: str) -> str:
    message = str(exc)
    assert "\n" not in message
    assert message.startswith(f"{name}: ")
    return message


def test_missing_file(tmp_path):
    with pytest.raises(AudioDecodeError) as info:
        decode_audio(tmp_path / "missing.mp3")
    assert one_line_naming(info.value, "missing.mp3") == "missing.mp3: file not found"


def test_empty_file(tmp_path):
    (tmp_path / "x.flac").write_bytes(b"")
    with pytest.raises(AudioDecodeError) as info:
        decode_audio(tmp_path / "x.flac")
    assert str(info.value) == "x.flac: file is empty (0 bytes)"


def test_text_file_named_mp3(tmp_path):
    (tmp_path / "y.mp3").write_text("these are not the sounds you are looking for\n" * 40)
    with pytest.raises(AudioDecodeError) as info:
        decode_audio(tmp_path / "y.mp3")
    assert str(info.value) == "y.mp3: not an audio file (unrecognised format)"


def test_directory(tmp_path):
    (tmp_path / "album.flac").mkdir()
    with pytest.raises(AudioDecodeError) as info:
        decode_audio(tmp_path / "album.flac")
    one_line_naming(info.value, "album.flac")


def test_no_audio_stream(tmp_path):
    import av

    path = tmp_path / "song.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for _ in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(AudioDecodeError) as info:
        decode_audio(path)
    assert str(info.value) == "song.mp4: no audio stream"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads all")
def test_unreadable_file_chmod(tmp_path):
    path = make_audio_file(tmp_path / "z.m4a", seconds=0.5)
    path.chmod(0)
    try:
        with pytest.raises(AudioDecodeError) as info:
            decode_audio(path)
    finally:
        path.chmod(0o644)
    assert str(info.value) == "z.m4a: cannot read file: permission denied"


def test_unreadable_file(tmp_path, monkeypatch):
    """Works as root too: the module's open() is made to refuse like a chmod 000 file."""
    path = make_audio_file(tmp_path / "z.m4a", seconds=0.5)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(audio_module, "open", refuse, raising=False)
    with pytest.raises(AudioDecodeError) as info:
        decode_audio(path)
    assert str(info.value) == "z.m4a: cannot read file: permission denied"


@pytest.mark.parametrize("name", ["mp3", "flac"])
def test_truncated_file_decodes_what_is_there(tmp_path, name):
    """Documented behaviour: a cut-off MP3/FLAC yields its first part, no error."""
    path = make_format_file(tmp_path, name, seconds=2.0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    decoded = decode_audio(path)
    assert_mono_16k(decoded, 1.0, tol=0.4)


@pytest.mark.parametrize("name", ["flac", "mp3", "aac"])
def test_truncated_to_nothing_is_a_clear_error(tmp_path, name):
    """Cut inside the header/first frame: nothing decodable -> one-line error naming the file."""
    path = make_format_file(tmp_path, name, seconds=2.0)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(AudioDecodeError) as info:
        decode_audio(path)
    message = one_line_naming(info.value, path.name)
    assert "no audio samples decoded" in message or "damaged or truncated" in message


def test_m4a_without_index_is_damaged(tmp_path):
    """M4A keeps its index (moov) at the end: cut in half it cannot be decoded at all."""
    path = make_audio_file(tmp_path / "cut.m4a", seconds=2.0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioDecodeError) as info:
        decode_audio(path)
    assert one_line_naming(info.value, "cut.m4a").startswith("cut.m4a: damaged or truncated")


def test_error_pickles_for_worker_processes():
    error = AudioDecodeError("/music/a b.mp3", "no audio\nstream")
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error) == "a b.mp3: no audio stream"
    assert copy.reason == "no audio stream"


def test_bad_arguments(tmp_path):
    path = make_audio_file(tmp_path / "a.wav", seconds=0.1)
    with pytest.raises(ValueError):
        decode_audio(path, sample_rate=0)
    with pytest.raises(ValueError):
        decode_audio(path, max_seconds=0)
