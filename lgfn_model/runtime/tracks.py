"""The predictor's values: what goes in (TrackInput), what comes out (TrackResult), where the
time went (PredictorStats), and a track on its way through the model (PendingTrack) with the
slices of windows that make up a batch."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lgfn_model.data.audio import DecodedAudio
from lgfn_model.data.lyrics import Lyrics
from lgfn_model.model.config import AudioConfig
from lgfn_model.model.network import TrackLines
from lgfn_model.model.outputs import TrackPrediction


@dataclass
class PredictorStats:
    """Where the time went (seconds), summed over the tracks predicted since the last reset.

    ``decode_s`` is measured inside the decoding workers (CPU time of all of them together,
    so with several workers it can exceed the wall time); ``text_s`` and ``model_s`` are wall
    time in this process (``model_s`` includes log-mel, which runs inside the model). On the
    CPU the lyrics encoder runs in a thread beside the model, so ``text_s`` overlaps ``model_s``.
    """

    tracks: int = 0
    failed: int = 0
    windows: int = 0
    audio_seconds: float = 0.0
    decode_s: float = 0.0
    text_s: float = 0.0
    model_s: float = 0.0
    oom_retries: int = 0
    """Batches that ran out of GPU memory and were split in two."""
    cpu_windows: int = 0
    """Windows run on the CPU because even one of them did not fit in GPU memory."""


@dataclass(frozen=True)
class TrackInput:
    """One track to predict: its audio file and lyrics, and a ``key`` of the caller's.

    ``samples``, when given, is the track's audio already decoded (mono float32 at the model's
    sample rate) and is used instead of decoding ``audio``, which then only names the track in
    messages: evaluation reads its clips from the feature cache this way, so that they go
    through the same windowing, batching, lyrics encoding, precision and pooling as a user's
    file. An empty ``samples`` array is a track without audio (lyrics-only data sets): its
    windows are laid over the lyrics' lines and the gate is 0.
    """

    audio: Path
    lyrics: Lyrics | None = None
    key: Any = None
    samples: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass
class TrackResult:
    input: TrackInput
    prediction: TrackPrediction | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.prediction is not None


@dataclass
class PendingTrack:
    """A decoded track whose windows are (partly) still waiting for the model."""

    index: int
    item: TrackInput
    audio: DecodedAudio
    windows: np.ndarray
    starts: np.ndarray
    lyrics: TrackLines | None
    lines: list[str]
    synced: bool
    line_starts: list[float | None] = field(default_factory=list)
    lyrics_job: Future | None = None
    """The lyrics encoding still running in the text thread; ``lyrics`` is set when it ends."""
    has_audio: bool = True
    """False for a lyrics-only track (its windows are silent placeholders, gate 0)."""
    next_window: int = 0
    outputs: list[dict[str, np.ndarray]] = field(default_factory=list)
    on_cpu: bool = False
    """Some windows ran on the CPU after a GPU out-of-memory (warned once per track)."""

    @property
    def done(self) -> bool:
        return self.next_window >= len(self.windows)

    @property
    def remaining(self) -> int:
        return len(self.windows) - self.next_window


Slices = list[tuple[PendingTrack, int, int]]
"""A batch: windows ``a:b`` of each track, in track and time order."""


def split_batch(batch: Slices, first: int) -> list[Slices]:
    """``batch`` as two batches, the first with ``first`` windows; window order is kept, so
    each track's outputs are still appended in time order."""
    head: Slices = []
    tail: Slices = []
    left = first
    for track, a, b in batch:
        take = max(0, min(left, b - a))
        if take:
            head.append((track, a, a + take))
        if a + take < b:
            tail.append((track, a + take, b))
        left -= take
    return [head, tail]


def ready_tracks(waiting: list[PendingTrack | TrackResult]) -> list[PendingTrack]:
    """The pending tracks before the first whose lyrics are still encoding: windows are run in
    track order, so a later track waits for an earlier one's lyrics."""
    ready: list[PendingTrack] = []
    for track in waiting:
        if isinstance(track, PendingTrack):
            if track.lyrics_job is not None:
                break
            ready.append(track)
    return ready


LYRICS_ONLY_TAIL_SECONDS = 8.0
"""A track without audio is covered up to its last timed line's start plus this."""


def lyrics_only_windows(lyrics: Lyrics, audio: AudioConfig) -> tuple[np.ndarray, np.ndarray]:
    """Placeholder windows (silent) of a track without audio: back to back over the span of
    its timed lines (all of them, as training lays them), one window when they are untimed."""
    starts = [line.start for line in lyrics.lines]
    span = 0.0
    if starts and all(s is not None and s == s for s in starts):
        span = max(float(s) for s in starts) + LYRICS_ONLY_TAIL_SECONDS  # type: ignore[arg-type]
    count = max(1, int(np.ceil(span / audio.window_seconds)))
    windows = np.zeros((count, audio.window_samples), dtype=np.float32)
    return windows, np.arange(count, dtype=np.float32) * np.float32(audio.window_seconds)
