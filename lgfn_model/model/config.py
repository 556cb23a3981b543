"""Model configuration as plain data: saved beside the weights as JSON, never pickled."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, get_args

MOODS: tuple[str, ...] = ("happy", "angry", "sad", "relaxed")
"""Quadrants Q1..Q4 of Russell's circumplex, in that order."""

PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")
"""Inference compute precisions: auto = bf16 on a GPU or a CPU with hardware bf16 (AMX,
AVX512-BF16), fp32 elsewhere."""

FusionKind = Literal["dgfm", "concat", "audio_only", "lyrics_only"]
FUSIONS: tuple[str, ...] = get_args(FusionKind)

PRETRAINED_AUDIO: tuple[str, ...] = ("musicnn-msd", "musicnn-student", "musicnn-jamendo")
"""The pretrained audio branches ``LGFN`` can build (``pretrained_audio``; None: no such branch)."""

PRETRAINED_FEATURES: dict[str, int] = {
    "musicnn-msd": 250,  # the MSD tagger's 200 penultimate units + its 50 tag logits
    "musicnn-student": 250,  # the student predicts those 250
    "musicnn-jamendo": 200,  # the MTG-Jamendo musicnn's 200-d embedding
}
"""The width of each pretrained branch's features per 3 s patch (what is cached and projected)."""

TEXT_ENCODER_DIMS: dict[str, int] = {"multilingual-e5-small": 384, "all-minilm-l6-v2": 384}
"""The lyrics encoders ``lgfn_model.text.load_text_encoder`` knows, with the width of their
line embeddings (``text_dim`` must match). Kept here, torch-free, so that a config can be checked
without importing the encoders; tests/test_config_bounds.py keeps it equal to ``TEXT_ENCODERS``."""

SONG_TEXT_ENCODERS = ("multilingual-e5-small",)
"""The text encoders that read a whole text in context (``song_text``, ``line_context``)."""

MUSICNN_SAMPLE_RATE = 16000
"""musicnn's MSD tagger reads 16 kHz audio; a model with that branch must be fed 16 kHz."""

PRETRAINED_SAMPLE_RATES: dict[str, int] = {
    "musicnn-msd": MUSICNN_SAMPLE_RATE,
    "musicnn-jamendo": 16000,  # the MTG-Jamendo taggers' rate (pretrained/jamendo_input.py)
}
"""The branches that read the waveform itself, with the rate they read (the student reads the
model's own log-mel, at any rate)."""


@dataclass
class AudioConfig:
    """Front end: what the waveform is resampled to and how it is cut and turned into log-mel."""

    sample_rate: int = 16000
    # Three of musicnn's 3 s patches (3 x 187 frames x hop 256 = 143,616 samples): the
    # pretrained branch then sees whole patches, aligned with the window.
    window_seconds: float = 8.976
    n_fft: int = 1024
    hop_length: int = 400
    n_mels: int = 96
    f_min: float = 20.0
    f_max: float = 8000.0

    @property
    def window_samples(self) -> int:
        return int(round(self.window_seconds * self.sample_rate))


@dataclass
class LGFNConfig:
    """Everything needed to rebuild an LGFN model and interpret its outputs."""

    version: str = "lgfn-untrained"
    audio: AudioConfig = field(default_factory=AudioConfig)
    labels: tuple[str, ...] = MOODS
    d_model: int = 128
    frames_per_window: int = 9
    resnet_channels: tuple[int, ...] = (16, 32, 64, 128)
    wave_channels: tuple[int, ...] = (16, 32, 64, 128)
    use_waveform_branch: bool = True
    # The third, pretrained audio branch: "musicnn-msd" (default) is musicnn's MSD tagger,
    # frozen; "musicnn-student" the compact CNN distilled from it (pretrained/student.py,
    # ~1/30 of the cost, less accurate so far: docs/performance.md); "musicnn-jamendo" the
    # MTG-Jamendo musicnn (pretrained/jamendo.py), frozen, on the same 3 s patches (not yet
    # measured: docs/musicnn.md); None: no such branch.
    pretrained_audio: str | None = "musicnn-msd"
    use_aal: bool = True
    fusion: FusionKind = "dgfm"
    text_encoder: str = "multilingual-e5-small"
    text_dim: int = 384
    max_lines: int = 256
    # One more, untimed "line" per track: the text encoder's vector of the whole lyrics (lines
    # read in each other's context; text.encoder ``encode_documents``), which the frames may
    # attend to beside the lines. Needs a text encoder that reads whole texts (e5).
    song_text: bool = False
    # Each lyric line's vector read in the context of the whole text (one pass over the joined
    # lines, each line pooled over its own tokens: text.encoder ``encode_in_context``) instead
    # of alone. Needs a text encoder that reads whole texts (e5).
    line_context: bool = False
    # A linear read-out of the whole text's vector (model/lyrics_readout.py), fitted after
    # training (`lgfn readout`) and added to the heads' logits: a second, lyrics-only vote that
    # the network's own reading of the words does not give. Needs ``song_text``.
    lyrics_readout: bool = False
    time_prior_sigma: float = 4.0
    dropout: float = 0.4
    # Training only: the chance that a window's from-scratch audio branches (mel ResNet,
    # waveform CNN) are silenced, so they cannot crowd out the pretrained branch by overfitting.
    branch_dropout: float = 0.5
    # Training only: learning-rate multiplier for the distilled student's own weights
    # ("musicnn-student"); 0 keeps it frozen as distilled. Its batch norms stay frozen either way.
    student_lr_scale: float = 0.0
    # The distilled student's architecture (pretrained/student.py StudentConfig), so that a
    # checkpoint rebuilds its own copy; `lgfn train` fills it in from the student it starts from.
    student_channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    student_hidden: int = 256

    @property
    def pretrained_features(self) -> int:
        """The width of the pretrained branch's features per 3 s patch (0: no such branch)."""
        if self.pretrained_audio is None:
            return 0
        return PRETRAINED_FEATURES[self.pretrained_audio]

    @property
    def embedding_dim(self) -> int:
        """The width of a track's embedding (``TrackPrediction.embedding``): the vector the
        mood head reads, and with a lyrics read-out its mood votes after it, so that one linear
        head of the embedding gives the mood (``runtime.personal_head.read_mood_head``)."""
        return self.d_model + (len(self.labels) if self.lyrics_readout else 0)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["labels"] = list(self.labels)
        data["resnet_channels"] = list(self.resnet_channels)
        data["wave_channels"] = list(self.wave_channels)
        data["student_channels"] = list(self.student_channels)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def validate(self) -> LGFNConfig:
        """Check every field against its type and bounds (``ConfigError`` names the first bad
        one); returns the config. For configs built in code, before training on them."""
        check_config_dict(self.to_dict())
        return self

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LGFNConfig:
        """Build a config from JSON data (a checkpoint's ``config``), checked first: a value of
        the wrong type or out of bounds is a ``ConfigError`` naming the field, before anything
        (least of all the model) is built from it."""
        check_config_dict(data)
        values = dict(data)
        values["audio"] = AudioConfig(**values["audio"])
        for key in ("labels", "resnet_channels", "wave_channels", "student_channels"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> LGFNConfig:
        return cls.from_dict(json.loads(text))


# --------------------------------------------------------------------------- checking

# Bounds of the numeric fields: generous for every real model (the shipped ones sit well
# inside them: docs/robustness.md), yet small enough that no config within them can ask for
# more than a few hundred MB of weights or of activations per window; ``checkpoint.py`` caps
# the whole model's parameter count as well. Integers unless the bounds are floats.
AUDIO_BOUNDS: dict[str, tuple[float, float]] = {
    "sample_rate": (8000, 96000),
    "window_seconds": (0.25, 60.0),
    "n_fft": (64, 8192),
    "hop_length": (1, 8192),  # and at most n_fft: a larger hop would skip samples
    "n_mels": (8, 512),  # and at most n_fft // 2 + 1, the STFT's frequency bins
    "f_min": (0.0, 48000.0),  # and below f_max
    "f_max": (1.0, 48000.0),  # and at most sample_rate / 2 (Nyquist)
}
BOUNDS: dict[str, tuple[float, float]] = {
    "d_model": (8, 4096),
    "frames_per_window": (1, 256),
    "text_dim": (8, 4096),  # and equal to the text encoder's width
    "max_lines": (1, 4096),
    "time_prior_sigma": (0.01, 600.0),  # seconds; the model takes its log
    "dropout": (0.0, 1.0),
    "branch_dropout": (0.0, 1.0),
    "student_lr_scale": (0.0, 100.0),
    "student_hidden": (1, 4096),
}
CHANNEL_BOUNDS: dict[str, tuple[int, int]] = {
    # Each entry (channels) 1..MAX_CHANNELS; the second number is the most entries: the mel
    # ResNet and the student add a stage per entry, the waveform CNN has four layers (entries
    # beyond four would be silently ignored, so they are refused).
    "resnet_channels": (1, 8),
    "wave_channels": (1, 4),
    "student_channels": (1, 8),
}
MAX_CHANNELS = 1024
MAX_MEL_FRAMES = 8192
"""Log-mel frames in one window (window_samples // hop_length + 1): 60 s at a 10 ms hop is 6,000."""
MAX_SPECTROGRAM_BINS = 1 << 24
"""STFT frames x frequency bins of one window: 64 MB of float32 (the default model: 185,000)."""
MAX_VERSION_LENGTH = 100

# Fields present in every checkpoint ever written (the first config had them all); the rest
# were added later and take their defaults when an older checkpoint lacks them.
REQUIRED = (
    "version", "audio", "labels", "d_model", "frames_per_window", "resnet_channels",
    "wave_channels", "use_waveform_branch", "use_aal", "fusion", "text_encoder", "text_dim",
    "max_lines", "time_prior_sigma", "dropout",
)  # fmt: skip


class ConfigError(ValueError):
    """A config value of the wrong type or out of bounds; the message is one line that starts
    with the field's name (``d_model is 30000; allowed 8..4096``)."""


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def show(value: Any, limit: int = 60) -> str:
    """``value`` for a one-line message: repr (control characters escaped), cut at ``limit``."""
    if isinstance(value, Mapping):
        text = "{...}"
    elif isinstance(value, list | tuple):
        text = repr(list(value))
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _number(name: str, value: Any, low: float, high: float) -> float:
    """``value`` checked as a number low..high: an int where the bounds are ints, else any
    finite int or float. Booleans are refused (JSON true is no number)."""
    integer = isinstance(low, int) and isinstance(high, int)
    allowed = f"{low:g}..{high:g}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        need = "an integer" if integer else "a number"
        raise ConfigError(f"{name} is {show(value)} ({_kind(value)}); must be {need} {allowed}")
    if integer and not isinstance(value, int):
        raise ConfigError(f"{name} is {show(value)}; must be an integer {allowed}")
    if not math.isfinite(value):
        raise ConfigError(f"{name} is {value}; must be a finite number {allowed}")
    if not low <= value <= high:
        raise ConfigError(f"{name} is {show(value)}; allowed {allowed}")
    return value


def _bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} is {show(value)} ({_kind(value)}); must be true or false")


def _choice(name: str, value: Any, allowed: tuple[str, ...], what: str = "") -> None:
    """One of a fixed set of names: never a path or anything else (a name is looked up in
    the package, so a path could only point outside it)."""
    if isinstance(value, str) and value in allowed:
        return
    names = ", ".join(repr(a) for a in allowed)
    path = isinstance(value, str) and any(part in value for part in ("/", "\\", ".."))
    hint = " (a name, never a path)" if path else ""
    raise ConfigError(f"{name} is {show(value)}; allowed: {names}{what}{hint}")


def _channels(name: str, value: Any) -> None:
    most = CHANNEL_BOUNDS[name][1]
    if not isinstance(value, list | tuple):
        raise ConfigError(
            f"{name} is {show(value)} ({_kind(value)}); must be a list of 1..{most} integers"
        )
    if not 1 <= len(value) <= most:
        raise ConfigError(f"{name} has {len(value)} entries; allowed 1..{most}")
    for index, entry in enumerate(value):
        _number(f"{name}[{index}]", entry, 1, MAX_CHANNELS)


def check_version(value: Any, name: str = "version") -> str:
    """A model version is short printable text: it is stored in every analysed item and printed
    in messages, so control characters (terminal escapes, newlines, bidi overrides) are
    refused."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{name} is {show(value)}; must be a non-empty string")
    if len(value) > MAX_VERSION_LENGTH:
        raise ConfigError(f"{name} has {len(value)} characters; allowed 1..{MAX_VERSION_LENGTH}")
    if not value.isprintable():
        bad = next(c for c in value if not c.isprintable())
        raise ConfigError(
            f"{name} is {show(value)}; control character {bad!r} not allowed (printable text only)"
        )
    return value


def _check_audio(audio: Any) -> None:
    if not isinstance(audio, Mapping):
        raise ConfigError(f"audio is {show(audio)} ({_kind(audio)}); must be an object")
    known = {f.name for f in fields(AudioConfig)}
    unknown = sorted(set(audio) - known)
    if unknown:
        raise ConfigError(f"audio: unknown keys {unknown}: made by a newer lgfn_model?")
    missing = [name for name in AUDIO_BOUNDS if name not in audio]
    if missing:
        raise ConfigError(f"audio.{missing[0]} is missing")
    for key, (low, high) in AUDIO_BOUNDS.items():
        _number(f"audio.{key}", audio[key], low, high)
    rate, n_fft, hop = audio["sample_rate"], audio["n_fft"], audio["hop_length"]
    if hop > n_fft:
        raise ConfigError(f"audio.hop_length is {hop}; allowed 1..{n_fft} (n_fft)")
    bins = n_fft // 2 + 1
    if audio["n_mels"] > bins:
        raise ConfigError(
            f"audio.n_mels is {audio['n_mels']}; allowed 8..{bins} (n_fft {n_fft} gives {bins} "
            "frequency bins)"
        )
    if audio["f_max"] > rate / 2:
        raise ConfigError(
            f"audio.f_max is {audio['f_max']:g}; allowed up to {rate / 2:g} (sample_rate / 2)"
        )
    if audio["f_min"] >= audio["f_max"]:
        raise ConfigError(
            f"audio.f_min is {audio['f_min']:g}; must be below f_max ({audio['f_max']:g})"
        )
    samples = int(round(audio["window_seconds"] * rate))
    if samples < n_fft:
        raise ConfigError(
            f"audio.window_seconds is {audio['window_seconds']:g}: {samples} samples, fewer than "
            f"n_fft ({n_fft})"
        )
    frames = samples // hop + 1
    if frames > MAX_MEL_FRAMES:
        raise ConfigError(
            f"audio.hop_length is {hop}: {frames} frames per window; allowed at most "
            f"{MAX_MEL_FRAMES} (window_samples {samples} / hop_length)"
        )
    if frames * bins > MAX_SPECTROGRAM_BINS:
        raise ConfigError(
            f"audio.n_fft is {n_fft}: {frames} x {bins} spectrogram bins per window; allowed at "
            f"most {MAX_SPECTROGRAM_BINS}"
        )


def check_config_dict(data: Any) -> None:
    """Check a config as JSON data (a checkpoint's ``config``): every field's type and bounds
    and how fields must agree, without building anything. Raises ``ConfigError`` (one line,
    naming the field) at the first bad value."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"the config is {show(data)} ({_kind(data)}); must be an object")
    known = {f.name for f in fields(LGFNConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown config keys {unknown}: made by a newer lgfn_model?")
    missing = [name for name in REQUIRED if name not in data]
    if missing:
        raise ConfigError(f"{missing[0]} is missing")
    check_version(data["version"])
    _check_audio(data["audio"])
    labels = data["labels"]
    # Training indexes moods by MOODS (datasets.py) and the plugin stores emotion_<mood> by
    # name: any other labels, or these in another order, would store wrong values.
    if not isinstance(labels, list | tuple) or list(labels) != list(MOODS):
        raise ConfigError(f"labels is {show(labels)}; must be {list(MOODS)} in that order")
    for key, (low, high) in BOUNDS.items():
        if key in data:
            _number(key, data[key], low, high)
    for key in CHANNEL_BOUNDS:
        if key in data:
            _channels(key, data[key])
    for key in ("use_waveform_branch", "use_aal"):
        _bool(key, data[key])
    for key in ("song_text", "line_context", "lyrics_readout"):
        if key in data:
            _bool(key, data[key])
    if data.get("lyrics_readout") and not data.get("song_text"):
        raise ConfigError("lyrics_readout reads the whole text's vector: it needs song_text")
    _choice("fusion", data["fusion"], FUSIONS)
    pretrained = data.get("pretrained_audio")
    if pretrained is not None:
        _choice("pretrained_audio", pretrained, PRETRAINED_AUDIO, " or null")
    encoder = data["text_encoder"]
    _choice("text_encoder", encoder, tuple(TEXT_ENCODER_DIMS))
    for key in ("song_text", "line_context"):
        if data.get(key) and encoder not in SONG_TEXT_ENCODERS:
            raise ConfigError(
                f"{key} needs a text encoder that reads whole texts"
                f" ({', '.join(SONG_TEXT_ENCODERS)}); text_encoder is {encoder!r}"
            )
    if data["text_dim"] != TEXT_ENCODER_DIMS[encoder]:
        raise ConfigError(
            f"text_dim is {data['text_dim']}; {encoder} gives {TEXT_ENCODER_DIMS[encoder]}"
        )
    rate = data["audio"]["sample_rate"]
    needed = PRETRAINED_SAMPLE_RATES.get(pretrained)
    if needed is not None and rate != needed:
        raise ConfigError(
            f"audio.sample_rate is {rate}; pretrained_audio {pretrained!r} reads {needed} Hz audio"
        )
