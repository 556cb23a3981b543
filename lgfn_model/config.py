"""Model configuration as plain data: saved beside the weights as JSON, never pickled."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

MOODS: tuple[str, ...] = ("happy", "angry", "sad", "relaxed")
"""Quadrants Q1..Q4 of Russell's circumplex, in that order."""

PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")
"""Inference compute precisions: auto = bf16 on a GPU or a CPU with hardware bf16 (AMX,
AVX512-BF16), fp32 elsewhere."""

FusionKind = Literal["dgfm", "concat", "audio_only", "lyrics_only"]


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
    # ~1/30 of the cost, less accurate so far: docs/performance.md); None: no such branch.
    pretrained_audio: str | None = "musicnn-msd"
    use_aal: bool = True
    fusion: FusionKind = "dgfm"
    text_encoder: str = "multilingual-e5-small"
    text_dim: int = 384
    max_lines: int = 256
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

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["labels"] = list(self.labels)
        data["resnet_channels"] = list(self.resnet_channels)
        data["wave_channels"] = list(self.wave_channels)
        data["student_channels"] = list(self.student_channels)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LGFNConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}: made by a newer lgfn_model?")
        values = dict(data)
        if "audio" in values:
            audio_known = {f.name for f in fields(AudioConfig)}
            values["audio"] = AudioConfig(
                **{k: v for k, v in values["audio"].items() if k in audio_known}
            )
        for key in ("labels", "resnet_channels", "wave_channels", "student_channels"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> LGFNConfig:
        return cls.from_dict(json.loads(text))
