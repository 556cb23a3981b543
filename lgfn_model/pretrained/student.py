"""A compact CNN distilled from musicnn's MSD tagger: musicnn's features at ~1/30 of its cost.

musicnn (``musicnn.py``) is the one audio-pretrained network that installs offline, and its
features carry most of the model's accuracy, but its front end costs ~1.2 GMAC per 3 s patch:
~70 GMAC for a 3-minute song, far beyond the project's 0.5 s-per-track CPU budget. The student
reads the log-mel LGFN computes anyway and predicts musicnn's 250 features (200 penultimate
units + 50 tag logits, standardised) for each 3 s patch of a window, for ~0.13 GMAC per
9 s window. It is trained by ``lgfn distill`` (``lgfn_model.training.distill``) on the
training audio with noise and clipping added to its input but clean musicnn targets, so it
also learns to see through the degradations musicnn itself is sensitive to.

Weights live in ``weights/musicnn_student/`` (safetensors + JSON, never pickled).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FEATURES = 250  # musicnn's 200 penultimate units + 50 tag logits


@dataclass
class StudentConfig:
    channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    patches: int = 3  # 3 s patches per 9 s window: the teacher's grid
    hidden: int = 256

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["channels"] = list(self.channels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudentConfig:
        return cls(
            channels=tuple(data.get("channels", cls.channels)),
            patches=int(data.get("patches", 3)),
            hidden=int(data.get("hidden", 256)),
        )


class _Block(nn.Module):
    """Two 3x3 convolutions with a projected shortcut; halves both axes."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, 2, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, 2, bias=False), nn.BatchNorm2d(out_channels)
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class MusicnnStudent(nn.Module):
    """(W, 1, M, F) log-mel of 9 s windows -> (W, patches, 250) standardised musicnn features.

    Every stage halves frequency and time (the first stage works at quarter resolution, where
    the cost of a ResNet lies); frequency is then averaged away and time pooled to one vector
    per 3 s patch, which a small MLP maps to the teacher's features.
    """

    def __init__(self, config: StudentConfig | None = None) -> None:
        super().__init__()
        self.config = config or StudentConfig()
        channels = self.config.channels
        self.stem = nn.Sequential(
            nn.Conv2d(1, channels[0], 3, 2, 1, bias=False),
            nn.BatchNorm2d(channels[0]),
            nn.ReLU(inplace=True),
        )
        self.stages = nn.Sequential(
            *(_Block(a, b) for a, b in zip(channels[:-1], channels[1:], strict=True))
        )
        self.pool = nn.AdaptiveAvgPool1d(self.config.patches)
        self.head = nn.Sequential(
            nn.Linear(channels[-1], self.config.hidden),
            nn.GELU(),
            nn.Linear(self.config.hidden, FEATURES),
        )

    def forward(self, log_mel: Tensor) -> Tensor:
        x = self.stages(self.stem(log_mel)).mean(dim=2)  # (W, C, F')
        x = self.pool(x).transpose(1, 2)  # (W, patches, C)
        return self.head(x)


def weights_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "weights" / "musicnn_student"


def save_student(
    student: MusicnnStudent, folder: str | Path, metadata: dict[str, Any] | None = None
) -> Path:
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in student.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE))
    document = {"architecture": student.config.to_dict(), "metadata": metadata or {}}
    (folder / CONFIG_FILE).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return folder


def read_student_config(path: str | Path | None = None) -> StudentConfig:
    """The architecture of the shipped student (or of the one saved in ``path``)."""
    folder = Path(path) if path is not None else weights_dir()
    try:
        document = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{folder}: not a distilled student ({error})") from None
    return StudentConfig.from_dict(document.get("architecture", {}))


def load_student(path: str | Path | None = None) -> MusicnnStudent:
    """The distilled student with its shipped weights (or those in ``path``), in eval mode."""
    from safetensors.torch import load_file

    folder = Path(path) if path is not None else weights_dir()
    student = MusicnnStudent(read_student_config(folder))
    student.load_state_dict(load_file(str(folder / WEIGHTS_FILE)), strict=True)
    return student.eval()
