"""What a prediction looks like: plain dataclasses, JSON-friendly, torch-free."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class WindowPrediction:
    """One analysis window of a track.

    ``gate`` holds the audio share per audio frame (1 = audio alone decided, 0 = lyrics alone);
    ``attention`` holds, per frame, the weights over the track's lyric lines (rows sum to 1,
    empty rows when there are no lyrics).
    """

    start: float
    end: float
    probabilities: dict[str, float]
    valence: float
    arousal: float
    gate: list[float]
    attention: list[list[float]]

    @property
    def mood(self) -> str:
        return max(self.probabilities, key=self.probabilities.__getitem__)


@dataclass
class TrackPrediction:
    """A track's mood, valence/arousal in [-1, 1], and how much audio vs lyrics decided."""

    mood: str
    probabilities: dict[str, float]
    valence: float
    arousal: float
    gate_audio: float
    gate_lyrics: float
    duration: float
    model_version: str
    lyrics_lines: list[str] = field(default_factory=list)
    lyrics_synced: bool = False
    lyrics_starts: list[float | None] = field(default_factory=list)
    """Start time (seconds) of each of ``lyrics_lines``; None for plain (untimed) lyrics."""
    windows: list[WindowPrediction] = field(default_factory=list)
    embedding: list[float] = field(default_factory=list)
    """The track embedding: the mean of its windows' vectors the heads read (float32 values).
    The model's mood head of it gives ``probabilities``; a listener's adapted head
    (lgfn_model/training/adaptation.py) gives theirs, without decoding the audio again."""

    def summary(self) -> dict[str, Any]:
        """The stable, compact record `lgfn predict` prints (no per-window detail)."""
        return {
            "mood": self.mood,
            "p": {k: round(v, 4) for k, v in self.probabilities.items()},
            "valence": round(self.valence, 4),
            "arousal": round(self.arousal, 4),
            "gate_audio": round(self.gate_audio, 4),
            "gate_lyrics": round(self.gate_lyrics, 4),
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
