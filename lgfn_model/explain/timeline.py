"""A track's prediction laid out on one time grid: what the pictures and the text report draw.

Torch-free and matplotlib-free (numpy only). The model works on windows (10 s by default,
the last one aligned to the track's end, so it may overlap the one before) and, inside each
window, on frames evenly spread over it (one per second by default). Here every quantity is
resampled onto a grid of frame-sized cells covering the track: a cell takes the mean over
the windows (or frames) that cover its centre, so overlapping windows are averaged, not
drawn twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lgfn_model.data.lyrics import line_end_times
from lgfn_model.model.outputs import TrackPrediction


@dataclass(frozen=True)
class MinuteMood:
    """One minute of the track (the last one may be shorter)."""

    start: float
    end: float
    mood: str
    probability: float
    gate_audio: float


@dataclass(frozen=True)
class LineAttention:
    """One lyric line and the share of the track's attention it received."""

    index: int
    text: str
    start: float | None
    share: float


@dataclass
class Timeline:
    """A prediction on a grid of cells ``step`` seconds long, ``0 <= t < duration``."""

    prediction: TrackPrediction
    step: float
    starts: np.ndarray
    """(n,) start of each cell, seconds."""
    probabilities: np.ndarray
    """(n, moods) window mood probabilities covering each cell."""
    valence: np.ndarray
    arousal: np.ndarray
    gate: np.ndarray
    """(n,) audio share of the frames covering each cell (1 = audio alone)."""
    attention: np.ndarray
    """(n, lines) attention over the lyric lines per cell (rows sum to 1; 0 columns without
    lyrics)."""
    line_shares: np.ndarray
    """(lines,) share of the whole track's attention per line (sums to 1 with lyrics)."""
    line_starts: list[float | None] = field(default_factory=list)
    line_ends: list[float | None] = field(default_factory=list)
    whole_text_share: float = 0.0
    """Mean share of a frame's attention that went to the whole lyrics text (a model that
    reads it as one more, untimed line: ``song_text``); the lines share the rest, and
    ``line_shares`` are shares of that rest. 0 for a model that reads the lines alone."""

    @property
    def labels(self) -> list[str]:
        return list(self.prediction.probabilities)

    @property
    def duration(self) -> float:
        return self.prediction.duration

    @property
    def has_lyrics(self) -> bool:
        return bool(self.prediction.lyrics_lines)

    @property
    def synced(self) -> bool:
        return self.has_lyrics and self.prediction.lyrics_synced

    @property
    def edges(self) -> np.ndarray:
        """(n + 1,) cell edges, the last one the track's end."""
        return np.append(self.starts, max(self.duration, float(self.starts[-1]) + 1e-6))

    def mood_per_minute(self) -> list[MinuteMood]:
        minutes = []
        count = max(1, math.ceil(self.duration / 60.0 - 1e-9))
        centres = self.starts + self.step / 2
        for minute in range(count):
            start, end = 60.0 * minute, min(60.0 * (minute + 1), self.duration)
            inside = (centres >= start) & (centres < end)
            if not inside.any():
                inside = np.zeros_like(inside)
                inside[min(len(inside) - 1, int(start // self.step))] = True
            mean = self.probabilities[inside].mean(axis=0)
            best = int(mean.argmax())
            minutes.append(
                MinuteMood(
                    start,
                    max(end, start),
                    self.labels[best],
                    float(mean[best]),
                    float(self.gate[inside].mean()),
                )
            )
        return minutes

    @property
    def reads_whole_text(self) -> bool:
        """Whether the whole text drew enough attention to be worth saying (0.5 % or more;
        below that it is rounding)."""
        return self.whole_text_share >= 0.005

    def top_lines(self, count: int = 10) -> list[LineAttention]:
        """The lines that drew the most attention, most first (ties: sung first)."""
        if not self.has_lyrics:
            return []
        order = sorted(range(len(self.line_shares)), key=lambda i: (-self.line_shares[i], i))
        return [
            LineAttention(
                i,
                self.prediction.lyrics_lines[i],
                self.line_starts[i] if self.synced else None,
                float(self.line_shares[i]),
            )
            for i in order[:count]
        ]


def build_timeline(prediction: TrackPrediction) -> Timeline:
    """Resample a prediction's windows and frames onto one grid over the track."""
    windows = prediction.windows
    if not windows:
        raise ValueError("the prediction has no per-window results")
    labels = list(prediction.probabilities)
    frames = max(1, len(windows[0].gate))
    window_seconds = max(1e-3, windows[0].end - windows[0].start)
    step = window_seconds / frames
    duration = max(prediction.duration, 1e-3)
    count = max(1, math.ceil(duration / step - 1e-9))
    starts = np.arange(count, dtype=np.float64) * step
    centres = np.minimum(starts + step / 2, duration)
    n_lines = len(prediction.lyrics_lines)

    probabilities = np.zeros((count, len(labels)))
    valence = np.zeros(count)
    arousal = np.zeros(count)
    gate = np.zeros(count)
    attention = np.zeros((count, n_lines))
    covered = np.zeros(count)
    window_starts = np.array([w.start for w in windows])
    for window in windows:
        length = max(1e-3, window.end - window.start)
        frame_step = length / max(1, len(window.gate))
        inside = (centres >= window.start) & (centres < window.start + length)
        if not inside.any():
            continue
        frame = np.clip(
            ((centres[inside] - window.start) // frame_step).astype(int), 0, len(window.gate) - 1
        )
        probabilities[inside] += [window.probabilities[label] for label in labels]
        valence[inside] += window.valence
        arousal[inside] += window.arousal
        gate[inside] += np.asarray(window.gate, dtype=np.float64)[frame]
        if n_lines and window.attention:
            attention[inside] += np.asarray(window.attention, dtype=np.float64)[frame]
        covered[inside] += 1
    # A cell no window covers (not expected) takes the nearest window's values.
    for cell in np.flatnonzero(covered == 0):
        nearest = windows[int(np.abs(window_starts - centres[cell]).argmin())]
        probabilities[cell] = [nearest.probabilities[label] for label in labels]
        valence[cell], arousal[cell] = nearest.valence, nearest.arousal
        gate[cell] = float(np.mean(nearest.gate))
        if n_lines and nearest.attention:
            attention[cell] = np.asarray(nearest.attention, dtype=np.float64).mean(axis=0)
        covered[cell] = 1
    probabilities /= covered[:, None]
    valence /= covered
    arousal /= covered
    gate /= covered
    attention /= covered[:, None]

    shares = attention.sum(axis=0)
    whole_text = 0.0
    if n_lines and shares.sum() > 0:
        # The model's attention rows sum to 1 over the lines and, with song_text, the whole
        # text; the rows here hold the lines' part only, so what they lack went to the text.
        attended = attention.sum(axis=1)
        whole_text = float(np.clip(1.0 - attended[attended > 0].mean(), 0.0, 1.0))
        shares = shares / shares.sum()
    line_starts: list[float | None] = [None] * n_lines
    line_ends: list[float | None] = [None] * n_lines
    if n_lines and prediction.lyrics_synced and len(prediction.lyrics_starts) == n_lines:
        timed = [float(s) for s in prediction.lyrics_starts if s is not None]
        if len(timed) == n_lines:
            line_starts = list(timed)
            line_ends = list(line_end_times(timed, prediction.duration))
    return Timeline(
        prediction=prediction,
        step=step,
        starts=starts,
        probabilities=probabilities,
        valence=valence,
        arousal=arousal,
        gate=gate,
        attention=attention,
        line_shares=shares,
        line_starts=line_starts,
        line_ends=line_ends,
        whole_text_share=whole_text,
    )


def format_time(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour on)."""
    total = int(round(max(0.0, seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"
