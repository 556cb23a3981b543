"""Tiny, licence-clean audio files made on the fly for tests (no downloaded audio).

Everything is synthesised (tones, chords, noise, silence) and encoded in milliseconds:

    from audio_factory import FORMATS, make_audio_file  # tests/ is on sys.path under pytest
    path = make_audio_file(tmp_path / "song.flac", seconds=1.0)
    path = make_audio_file(tmp_path / "song.m4a", codec="alac")   # ALAC instead of AAC
    for name in FORMATS:                                           # every format, by name
        make_format_file(tmp_path, name, seconds=1.0)

The container/codec is chosen by the file's extension; ``codec`` overrides it where one
extension has several codecs (``.m4a``: ``"aac"`` by default, or ``"alac"``).

Encoders: libsndfile (through ``soundfile``) writes MP3, FLAC, Ogg Vorbis, Opus, WAV and AIFF;
PyAV's bundled FFmpeg writes M4A (AAC, ALAC).  Format limits, enforced with a ``ValueError``:
MP3 takes at most 2 channels and rates up to 48 kHz; AAC rates up to 96 kHz.  Opus only stores
8/12/16/24/48 kHz: any other requested rate is resampled to 48 kHz before encoding (what every
real Opus file holds), so the file's rate is then 48000.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

KINDS = ("tone", "chord", "noise", "silence")


@dataclass(frozen=True)
class AudioFormat:
    suffix: str
    codec: str | None  # None: the extension's default codec


FORMATS: dict[str, AudioFormat] = {
    "mp3": AudioFormat(".mp3", None),
    "flac": AudioFormat(".flac", None),
    "ogg": AudioFormat(".ogg", None),
    "opus": AudioFormat(".opus", None),
    "wav": AudioFormat(".wav", None),
    "aiff": AudioFormat(".aiff", None),
    "aac": AudioFormat(".m4a", "aac"),
    "alac": AudioFormat(".m4a", "alac"),
}
"""Every format the factory writes, by name (see :func:`make_format_file`)."""

# extension -> (soundfile format, subtype); M4A goes through PyAV instead.
_SOUNDFILE = {
    ".mp3": ("MP3", "MPEG_LAYER_III"),
    ".flac": ("FLAC", "PCM_16"),
    ".ogg": ("OGG", "VORBIS"),
    ".oga": ("OGG", "VORBIS"),
    ".opus": ("OGG", "OPUS"),
    ".wav": ("WAV", "PCM_16"),
    ".aiff": ("AIFF", "PCM_16"),
    ".aif": ("AIFF", "PCM_16"),
}
_M4A = (".m4a", ".mp4")
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 8: "7.1"}


def synth(
    seconds: float = 2.0,
    sample_rate: int = 44100,
    channels: int = 2,
    kind: str = "tone",
    *,
    seed: int = 0,
) -> np.ndarray:
    """Return float32 samples of shape ``(frames, channels)`` with peak about 0.5.

    ``tone``: a 440 Hz sine (each channel a slightly different pitch, so a downmix is never
    silent); ``chord``: a C-major triad; ``noise``: seeded white noise; ``silence``: zeros.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {KINDS}")
    if channels < 1:
        raise ValueError("channels must be >= 1")
    frames = int(round(seconds * sample_rate))
    t = np.arange(frames, dtype=np.float64) / sample_rate
    out = np.zeros((frames, channels), dtype=np.float32)
    if kind == "silence":
        return out
    if kind == "noise":
        rng = np.random.default_rng(seed)
        return (0.25 * rng.standard_normal((frames, channels))).clip(-1, 1).astype(np.float32)
    nyquist = sample_rate / 2
    for c in range(channels):
        if kind == "tone":
            freqs = [min(440.0 * (1 + 0.05 * c), 0.45 * sample_rate)]
        else:
            freqs = [f * (1 + 0.01 * c) for f in (261.63, 329.63, 392.0) if f < nyquist]
        sig = sum(np.sin(2 * np.pi * f * t) for f in freqs) / len(freqs)
        out[:, c] = 0.5 * sig
    return out


def make_audio_file(
    path: str | Path,
    seconds: float = 2.0,
    sample_rate: int = 44100,
    channels: int = 2,
    kind: str = "tone",
    *,
    codec: str | None = None,
    seed: int = 0,
) -> Path:
    """Synthesise ``kind`` audio and write it to ``path`` in the format its extension names.

    ``codec`` picks among codecs of one container: for ``.m4a``/``.mp4`` ``"aac"`` (default)
    or ``"alac"``.  Returns the path.  Parent folders are created.
    """
    path = Path(path)
    ext = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = synth(seconds, sample_rate, channels, kind, seed=seed)
    if ext in _M4A:
        codec = codec or "aac"
        if codec not in ("aac", "alac"):
            raise ValueError(f"{path.name}: codec {codec!r} not supported in M4A (aac, alac)")
        _write_pyav(path, data, sample_rate, codec)
        return path
    if ext not in _SOUNDFILE:
        raise ValueError(f"{path.name}: unsupported extension {ext!r}")
    if codec is not None:
        raise ValueError(f"{path.name}: codec= only applies to .m4a/.mp4 files")
    fmt, subtype = _SOUNDFILE[ext]
    if fmt == "MP3" and (channels > 2 or sample_rate > 48000):
        raise ValueError(f"{path.name}: MP3 takes at most 2 channels and 48 kHz")
    if subtype == "OPUS" and sample_rate not in _OPUS_RATES:
        data, sample_rate = _resample(data, sample_rate, 48000), 48000
    import soundfile

    soundfile.write(path, data, sample_rate, format=fmt, subtype=subtype)
    return path


def _resample(data: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    import soxr

    return np.ascontiguousarray(soxr.resample(data, rate_in, rate_out), dtype=np.float32)


def _write_pyav(path: Path, data: np.ndarray, sample_rate: int, codec: str) -> None:
    import av

    channels = data.shape[1]
    if codec == "aac" and sample_rate > 96000:
        raise ValueError(f"{path.name}: AAC takes sample rates up to 96 kHz")
    layout = _LAYOUTS.get(channels)
    if layout is None:
        raise ValueError(f"{path.name}: no channel layout for {channels} channels")
    planar = np.ascontiguousarray(data.T)
    if codec == "alac":
        fmt = "s16p"
        planar = np.clip(np.round(planar * 32767), -32768, 32767).astype(np.int16)
    else:
        fmt = "fltp"
    with av.open(str(path), "w", format="ipod") as out:
        stream = out.add_stream(codec, rate=sample_rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(planar, format=fmt, layout=layout)
        frame.sample_rate = sample_rate
        frame.pts, frame.time_base = 0, Fraction(1, sample_rate)  # priming -> an edit list
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def make_format_file(directory: str | Path, name: str, stem: str = "audio", **kwargs) -> Path:
    """Write ``directory/<stem>-<name><suffix>`` in the format ``FORMATS[name]``.

    ``kwargs`` go to :func:`make_audio_file` (``seconds``, ``sample_rate``, ``channels``, ``kind``).
    """
    fmt = FORMATS[name]
    return make_audio_file(
        Path(directory) / f"{stem}-{name}{fmt.suffix}", codec=fmt.codec, **kwargs
    )


def write_mood_manifest(folder: Path) -> Path:
    """Four short clips, one per mood (3.5-4.25 s: a chord, noise, a tone, a chord), and the
    ``manifest.csv`` that labels them for training (`lgfn train --data MANIFEST`)."""
    rows = ["id,audio,lyrics,mood,split"]
    kinds = {"happy": "chord", "angry": "noise", "sad": "tone", "relaxed": "chord"}
    for n, (mood, kind) in enumerate(kinds.items()):
        song = make_audio_file(folder / f"{mood}.flac", seconds=3.5 + n / 4, kind=kind, seed=n)
        rows.append(f"{mood},{song.name},,{mood},train")
    manifest = folder / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest
