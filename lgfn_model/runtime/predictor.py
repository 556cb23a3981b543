"""Predictor: load a model once, predict many tracks.

Decoding (the CPU-heavy part) runs in worker processes and streams into the model, which
runs batched over the windows of several tracks at once, on CUDA when available (bf16
autocast) or the CPU. Results come back in input order as soon as a track is complete.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lgfn_model.data.audio import DecodedAudio, decode_audio, decode_or_error
from lgfn_model.data.lyrics import Lyrics
from lgfn_model.data.windows import cut_windows
from lgfn_model.model.config import LGFNConfig
from lgfn_model.model.network import LGFN, TrackLines, stack_lines
from lgfn_model.model.outputs import TrackPrediction, WindowPrediction
from lgfn_model.runtime.checkpoint import load_checkpoint
from lgfn_model.runtime.device import resolve_device, resolve_precision
from lgfn_model.runtime.fold import fold_batch_norms
from lgfn_model.runtime.heap import keep_large_buffers_in_heap
from lgfn_model.runtime.parent_watch import SpawnedOnMainThread, end_with_parent
from lgfn_model.runtime.threads import choose_threads
from lgfn_model.text.int8 import int8_available

_log = logging.getLogger(__name__)


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
    audio: Path
    lyrics: Lyrics | None = None
    key: Any = None


@dataclass
class TrackResult:
    input: TrackInput
    prediction: TrackPrediction | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.prediction is not None


def default_workers() -> int:
    # One process keeps decoding ahead of a CPU model; more help when a GPU does the model.
    return max(1, min(8, (os.cpu_count() or 2) - 1))


@dataclass
class _PendingTrack:
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
    next_window: int = 0
    outputs: list[dict[str, np.ndarray]] = field(default_factory=list)
    on_cpu: bool = False
    """Some windows ran on the CPU after a GPU out-of-memory (warned once per track)."""

    @property
    def done(self) -> bool:
        return self.next_window >= len(self.windows)


class Predictor:
    """A loaded LGFN model plus its lyrics encoder, ready to predict tracks.

    The predictor owns the model it is given: on the CPU it folds its batch norms into the
    convolutions (inference only from then on)."""

    def __init__(
        self,
        model: LGFN,
        device: torch.device,
        batch_size: int = 32,
        workers: int | None = None,
        text_encoder: Any = None,
        precision: str = "auto",
        overlap_text: bool = True,
        threads: int | None = None,
    ) -> None:
        # Batches reuse the same large buffers instead of page-faulting fresh ones each time.
        keep_large_buffers_in_heap()
        self.model = model.to(device).eval()
        self.device = device
        self.precision = precision
        self.dtype = resolve_precision(precision, device)
        """The compute dtype of the model's heavy layers (float32 or bfloat16)."""
        self.model.set_compute_dtype(self.dtype)
        # Exact to float rounding, 10 % off a CPU forward pass (lgfn_model/runtime/fold.py); the
        # model is this predictor's from now on and cannot be trained.
        self._folded = device.type == "cpu"
        if self._folded:
            fold_batch_norms(self.model)
        self.config: LGFNConfig = model.config
        self.batch_size = max(1, batch_size)
        self.workers = default_workers() if workers is None else max(0, workers)
        # torch's threads are one setting for the whole process; this predictor is the
        # process's model, so it sets them once (runtime/threads.py says why not all cores).
        self.threads, self.threads_reason = choose_threads(
            threads, self.workers, on_cpu=device.type == "cpu"
        )
        if device.type == "cpu" or threads is not None:
            torch.set_num_threads(self.threads)
        self._text_encoder = text_encoder
        self.stats = PredictorStats()
        self.warn: Callable[[str], None] = _log.warning
        """Where warnings go (GPU out of memory); the beets plugin points it at its summary."""
        self._cpu_copy: LGFN | None = None
        self._warned_split = False
        # On the CPU the lyrics of one track are encoded in a thread while the model runs on
        # the windows of the tracks before it, when the two are of similar cost
        # (`_overlap_pays`; docs/performance.md). Off for GPUs, where text is cheap.
        # One thread for the model leaves none for the text thread to share.
        self.overlap_text = overlap_text and device.type == "cpu" and self.threads >= 2
        self._text_threads = self._shared_threads = 1
        self._text_pool: ThreadPoolExecutor | None = None
        self._text_job: Future | None = None

    @classmethod
    def load(
        cls,
        checkpoint: str | Path | None = None,
        device: str | torch.device = "auto",
        batch_size: int = 32,
        workers: int | None = None,
        precision: str = "auto",
        threads: int | None = None,
    ) -> Predictor:
        """Load a checkpoint folder (None: the model shipped with the package); ``threads``
        None chooses the CPU thread count from the cores free (lgfn_model/runtime/threads.py)."""
        resolved = resolve_device(device)
        model = load_checkpoint(checkpoint, device="cpu")
        return cls(
            model,
            resolved,
            batch_size=batch_size,
            workers=workers,
            precision=precision,
            threads=threads,
        )

    @property
    def version(self) -> str:
        return self.config.version

    @property
    def text_encoder(self) -> Any:
        # Loaded on first use: a library of instrumentals never pays for it.
        if self._text_encoder is None:
            from lgfn_model.text import load_text_encoder

            # The lyrics encoder follows the model's precision: bf16 halves its time on CPUs
            # with hardware bf16 and on GPUs, and moves line embeddings by a cosine of about 1e-4.
            # Other CPUs under 'auto' get int8 Linear layers: 1.4x faster, the held-out figures
            # unchanged (docs/text-encoder.md); 'fp32' keeps the float32 reference.
            dtype = torch.bfloat16 if self.dtype == torch.bfloat16 else None
            self._text_encoder = load_text_encoder(
                self.config.text_encoder,
                device=self.device,
                dtype=dtype,
                int8=self.text_precision == "int8",
            )
        return self._text_encoder

    @property
    def text_precision(self) -> str:
        """How the lyrics encoder computes: 'bfloat16', 'int8' or 'float32'."""
        if self.dtype == torch.bfloat16:
            return "bfloat16"
        if self.device.type == "cpu" and self.precision == "auto" and int8_available():
            return "int8"
        return "float32"

    # -- public API -------------------------------------------------------------------------

    def predict(self, audio: str | Path, lyrics: Lyrics | None = None) -> TrackPrediction:
        """One track; raises AudioDecodeError with a one-line reason on unreadable audio."""
        item = TrackInput(Path(audio), lyrics)
        decoded = decode_audio(item.audio, self.config.audio.sample_rate)
        pending = self._prepare(0, item, decoded)
        results = list(self._run_model([pending]))
        return results[0].prediction  # type: ignore[return-value]

    def predict_many(
        self, inputs: Iterable[TrackInput], on_decoded: Callable[[TrackInput], None] | None = None
    ) -> Iterator[TrackResult]:
        """Stream results in input order; a track that fails yields a result with ``error``."""
        decoded = self._decode_stream(iter(inputs))
        if not self.overlap_text:
            yield from self._batched(decoded, on_decoded)
            return
        self._text_threads = torch.get_num_threads()
        self._shared_threads = max(1, self._text_threads // 2)
        try:
            with ThreadPoolExecutor(1, thread_name_prefix="lgfn-text") as pool:
                self._text_pool = pool
                yield from self._batched(decoded, on_decoded)
        finally:
            self._text_pool = None
            torch.set_num_threads(self._text_threads)

    # -- decoding -------------------------------------------------------------------------

    def _decode_stream(self, inputs: Iterator[TrackInput]) -> Iterator[_Decoded]:
        rate = self.config.audio.sample_rate
        if self.workers == 0:
            for item in inputs:
                yield _decode_or_error(item, rate)
            return
        # spawn, not fork: forking a process that holds torch's thread pools can deadlock.
        context = multiprocessing.get_context("spawn")
        lookahead = 2 * self.workers + 2
        # Each worker ends when this process does, even by kill -9 (runtime/parent_watch.py).
        watch = (os.getpid(), SpawnedOnMainThread())
        with ProcessPoolExecutor(
            self.workers, mp_context=context, initializer=end_with_parent, initargs=watch
        ) as pool:
            queue: deque[tuple[TrackInput, Future]] = deque()
            for item in inputs:
                queue.append((item, pool.submit(decode_or_error, item.audio, rate)))
                while len(queue) >= lookahead:
                    yield _result_of(*queue.popleft())
            while queue:
                yield _result_of(*queue.popleft())

    # -- model ----------------------------------------------------------------------------

    def _batched(
        self,
        decoded: Iterator[_Decoded],
        on_decoded: Callable[[TrackInput], None] | None,
    ) -> Iterator[TrackResult]:
        waiting: list[_PendingTrack | TrackResult] = []
        for index, (item, audio, error, seconds) in enumerate(decoded):
            self.stats.decode_s += seconds
            if on_decoded is not None:
                on_decoded(item)
            if audio is None:
                self.stats.failed += 1
                waiting.append(TrackResult(item, error=error))
            else:
                try:
                    pending = self._prepare(index, item, audio)
                except Exception as failure:  # bad lyrics must not stop the run
                    self.stats.failed += 1
                    waiting.append(TrackResult(item, error=f"{item.audio}: {failure}"))
                else:
                    waiting.append(pending)
            # The newest track's lyrics may still be encoding: the model meanwhile runs on the
            # windows of the tracks before it.
            self._collect_lyrics(waiting, keep_newest=True)
            if sum(len(p.windows) - p.next_window for p in _ready(waiting)) >= self.batch_size:
                yield from self._flush(waiting, final=False)
        yield from self._flush(waiting, final=True)

    def _collect_lyrics(
        self, waiting: list[_PendingTrack | TrackResult], keep_newest: bool
    ) -> None:
        """Wait for the lyrics encodings of the tracks in ``waiting`` (all but the newest, when
        ``keep_newest``); a track whose lyrics failed to encode becomes a failed result."""
        last = len(waiting) - 1
        for position, track in enumerate(waiting):
            if not isinstance(track, _PendingTrack) or track.lyrics_job is None:
                continue
            if keep_newest and position == last:
                break
            try:
                track.lyrics = track.lyrics_job.result()
            except Exception as failure:  # bad lyrics must not stop the run
                self.stats.failed += 1
                waiting[position] = TrackResult(track.item, error=f"{track.item.audio}: {failure}")
            else:
                track.lyrics_job = None

    def _flush(
        self, waiting: list[_PendingTrack | TrackResult], final: bool
    ) -> Iterator[TrackResult]:
        if final:
            self._collect_lyrics(waiting, keep_newest=False)
        for _ in self._run_batches(_ready(waiting), final):
            pass
        while waiting:
            head = waiting[0]
            if isinstance(head, TrackResult):
                yield waiting.pop(0)
            elif head.done:
                waiting.pop(0)
                yield TrackResult(head.item, prediction=self._finish(head))
            else:
                break

    def _run_model(self, pending: list[_PendingTrack]) -> Iterator[TrackResult]:
        for _ in self._run_batches(pending, final=True):
            pass
        for track in pending:
            yield TrackResult(track.item, prediction=self._finish(track))

    def _run_batches(self, pending: list[_PendingTrack], final: bool) -> Iterator[None]:
        """Run full batches of windows (and, when final, the remainder) through the model."""
        while True:
            remaining = sum(len(p.windows) - p.next_window for p in pending)
            if remaining == 0 or (remaining < self.batch_size and not final):
                return
            batch: list[tuple[_PendingTrack, int, int]] = []
            budget = self.batch_size
            for track in pending:
                if budget == 0:
                    break
                take = min(budget, len(track.windows) - track.next_window)
                if take > 0:
                    batch.append((track, track.next_window, track.next_window + take))
                    track.next_window += take
                    budget -= take
            self._forward(batch)
            yield None

    def _forward(self, batch: list[tuple[_PendingTrack, int, int]]) -> None:
        """Run one batch; when it runs out of GPU memory, retry it in halves, and run a single
        window that still does not fit on the CPU, so one long or lyric-heavy batch never
        stops the run."""
        started = time.perf_counter()
        try:
            for part in self._thread_shares(batch):
                self._forward_safely(part)
        finally:
            self.stats.model_s += time.perf_counter() - started

    def _thread_shares(
        self, batch: list[tuple[_PendingTrack, int, int]]
    ) -> Iterator[list[tuple[_PendingTrack, int, int]]]:
        """``batch`` in parts, with torch's thread count set for each.

        The count is one for the whole process: while the text thread works, it and the model
        each get half the cores, otherwise the model has them all. The model runs in quarter
        batches while the text thread is busy, so that when the lyrics are done the rest of
        the batch gets every core again (a heavy model would otherwise run a whole batch on
        half of them after a short lyrics job)."""
        if self._text_pool is None:
            yield batch
            return
        quarter = max(1, self.batch_size // 4)
        while batch:
            busy = self._text_job is not None and not self._text_job.done()
            torch.set_num_threads(self._shared_threads if busy else self._text_threads)
            if busy and sum(b - a for _, a, b in batch) > quarter:
                part, batch = _split_batch(batch, quarter)
            else:
                part, batch = batch, []
            yield part

    def _forward_safely(self, batch: list[tuple[_PendingTrack, int, int]]) -> None:
        try:
            self._forward_on(batch, self.model, self.device)
            return
        except torch.OutOfMemoryError:
            pass  # leave the except block first, so the failed batch's tensors can be freed
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        windows = sum(b - a for _, a, b in batch)
        if windows > 1:
            self.stats.oom_retries += 1
            if not self._warned_split:
                self._warned_split = True
                self.warn(
                    f"GPU out of memory on a batch of {windows} windows; "
                    "retrying in smaller batches (a lower batch_size avoids this)"
                )
            for half in _split_batch(batch, windows // 2):
                self._forward_safely(half)
            return
        track = batch[0][0]
        if not track.on_cpu:
            track.on_cpu = True
            self.warn(f"{track.item.audio}: GPU out of memory on a single window; using the CPU")
        self.stats.cpu_windows += 1
        self._forward_on(batch, self._cpu_model(), torch.device("cpu"))

    def _cpu_model(self) -> LGFN:
        """A CPU copy of the model, built from host copies of the weights: copying the module
        itself would first allocate a second copy on the GPU that just ran out of memory."""
        if self._cpu_copy is None:
            state = {name: value.detach().cpu() for name, value in self.model.state_dict().items()}
            copy = LGFN(self.config).eval()
            if self._folded:  # the same modules, so that the folded weights fit
                fold_batch_norms(copy)
            copy.load_state_dict(state)
            # The precision asked for, as it resolves on the CPU (a GPU host may lack
            # hardware bf16).
            copy.set_compute_dtype(resolve_precision(self.precision, torch.device("cpu")))
            self._cpu_copy = copy.eval()
        return self._cpu_copy

    @torch.inference_mode()
    def _forward_on(
        self, batch: list[tuple[_PendingTrack, int, int]], model: LGFN, device: torch.device
    ) -> None:
        waves = np.concatenate([t.windows[a:b] for t, a, b in batch])
        starts = np.concatenate([t.starts[a:b] for t, a, b in batch])
        waveforms = torch.from_numpy(waves)
        if device.type == "cuda":
            waveforms = waveforms.pin_memory()
        waveforms = waveforms.to(device, non_blocking=True)
        window_starts = torch.from_numpy(starts).to(device)
        lyrics = stack_lines([(t.lyrics, b - a) for t, a, b in batch], self.config.text_dim)
        if lyrics is not None:
            lyrics = lyrics.to(device)
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if device.type == "cuda" and self.dtype == torch.bfloat16
            else nullcontext()
        )
        with autocast:
            out = model(waveforms, window_starts, lyrics)
        probabilities = torch.softmax(out.mood_logits.float(), dim=-1).cpu().numpy()
        logits = out.mood_logits.float().cpu().numpy()
        valence = out.valence.float().cpu().numpy()
        arousal = out.arousal.float().cpu().numpy()
        gate = out.gate.float().cpu().numpy()
        attention = out.attention.float().cpu().numpy()
        offset = 0
        for track, a, b in batch:
            n = b - a
            n_lines = len(track.lines)
            track.outputs.append(
                {
                    "logits": logits[offset : offset + n],
                    "probabilities": probabilities[offset : offset + n],
                    "valence": valence[offset : offset + n],
                    "arousal": arousal[offset : offset + n],
                    "gate": gate[offset : offset + n],
                    "attention": attention[offset : offset + n, :, :n_lines],
                }
            )
            offset += n
        self.stats.windows += offset

    # -- per-track preparation and aggregation ---------------------------------------------

    def _prepare(self, index: int, item: TrackInput, audio: DecodedAudio) -> _PendingTrack:
        windows, starts = cut_windows(audio.samples, self.config.audio)
        lines: list[str] = []
        line_starts: list[float | None] = []
        batch = None
        synced = False
        job = None
        lyrics = item.lyrics
        if lyrics and self.config.fusion != "audio_only":
            kept = lyrics.lines[: self.config.max_lines]
            lines = [line.text for line in kept]
            line_starts = [line.start for line in kept]
            synced = all(line.start is not None for line in kept)
            encoder = self.text_encoder  # loaded here, not in the text thread
            if self._text_pool is not None and self._overlap_pays():
                job = self._text_pool.submit(
                    self._encode_lyrics, encoder, lines, line_starts, audio.duration
                )
                self._text_job = job
                torch.set_num_threads(self._shared_threads)
            else:
                with _one_thread_on(self.device):
                    batch = self._encode_lyrics(encoder, lines, line_starts, audio.duration)
        return _PendingTrack(
            index, item, audio, windows, starts, batch, lines, synced, line_starts, lyrics_job=job
        )

    def _overlap_pays(self) -> bool:
        """Whether to encode the next lyrics in the text thread: while they cost at least half
        as much as the model does. Measured on a 2-core AVX2 EPYC: the fast model (lyrics
        ~1.3x its model time) 11 % faster overlapped; the default one (~0.2x) no faster, as
        half the cores slow its convolutions more than the overlap saves."""
        if self.stats.tracks < 2 or self.stats.model_s == 0:
            return True
        return self.stats.text_s >= 0.5 * self.stats.model_s

    def _encode_lyrics(
        self, encoder: Any, lines: list[str], line_starts: list[float | None], duration: float
    ) -> TrackLines:
        started = time.perf_counter()
        embeddings = encoder.encode(lines).float().cpu()
        self.stats.text_s += time.perf_counter() - started
        return TrackLines.timed(embeddings, line_starts, duration)

    def _finish(self, track: _PendingTrack) -> TrackPrediction:
        parts = {key: np.concatenate([o[key] for o in track.outputs]) for key in track.outputs[0]}
        labels = list(self.config.labels)
        # Track mood = softmax of the mean window logits: the same pooling training uses.
        mean_logits = parts["logits"].mean(axis=0)
        track_p = np.exp(mean_logits - mean_logits.max())
        track_p /= track_p.sum()
        gate_audio = float(parts["gate"].mean())
        window_seconds = self.config.audio.window_seconds
        windows = [
            WindowPrediction(
                start=float(start),
                end=float(min(start + window_seconds, max(track.audio.duration, window_seconds))),
                probabilities=_label_dict(labels, parts["probabilities"][i]),
                valence=float(parts["valence"][i]),
                arousal=float(parts["arousal"][i]),
                gate=[float(g) for g in parts["gate"][i]],
                attention=parts["attention"][i].round(4).tolist() if track.lines else [],
            )
            for i, start in enumerate(track.starts)
        ]
        probabilities = _label_dict(labels, track_p)
        self.stats.tracks += 1
        self.stats.audio_seconds += float(track.audio.duration)
        return TrackPrediction(
            mood=max(probabilities, key=probabilities.__getitem__),
            probabilities=probabilities,
            valence=float(parts["valence"].mean()),
            arousal=float(parts["arousal"].mean()),
            gate_audio=gate_audio,
            gate_lyrics=1.0 - gate_audio,
            duration=float(track.audio.duration),
            model_version=self.version,
            lyrics_lines=track.lines,
            lyrics_synced=track.synced,
            lyrics_starts=track.line_starts,
            windows=windows,
        )


@contextmanager
def _one_thread_on(device: torch.device) -> Iterator[None]:
    """Run the lyrics encoder on one CPU thread. Its matrices (a song's lines) are small, and
    beside a busy decoding worker a second thread mostly waits: measured on the 2-core CPU,
    the ten Jamendo songs' lyrics took 0.9 s on one thread and 2.3 s on two."""
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _split_batch(
    batch: list[tuple[_PendingTrack, int, int]], first: int
) -> list[list[tuple[_PendingTrack, int, int]]]:
    """``batch`` as two batches, the first with ``first`` windows; window order is kept, so
    each track's outputs are still appended in time order."""
    head: list[tuple[_PendingTrack, int, int]] = []
    tail: list[tuple[_PendingTrack, int, int]] = []
    left = first
    for track, a, b in batch:
        take = max(0, min(left, b - a))
        if take:
            head.append((track, a, a + take))
        if a + take < b:
            tail.append((track, a + take, b))
        left -= take
    return [head, tail]


def _ready(waiting: list[_PendingTrack | TrackResult]) -> list[_PendingTrack]:
    """The pending tracks before the first whose lyrics are still encoding: windows are run in
    track order, so a later track waits for an earlier one's lyrics."""
    ready: list[_PendingTrack] = []
    for track in waiting:
        if isinstance(track, _PendingTrack):
            if track.lyrics_job is not None:
                break
            ready.append(track)
    return ready


def _label_dict(labels: list[str], values: np.ndarray) -> dict[str, float]:
    return {label: float(value) for label, value in zip(labels, values, strict=True)}


# (input, decoded audio or None, one-line error or None, seconds spent decoding)
_Decoded = tuple[TrackInput, DecodedAudio | None, str | None, float]


def _decode_or_error(item: TrackInput, sample_rate: int) -> _Decoded:
    return (item, *decode_or_error(item.audio, sample_rate))


def _result_of(item: TrackInput, future: Future) -> _Decoded:
    try:
        return (item, *future.result())
    except Exception as error:  # the worker process died (e.g. killed for memory)
        return item, None, f"{item.audio}: decoder process failed ({type(error).__name__})", 0.0
