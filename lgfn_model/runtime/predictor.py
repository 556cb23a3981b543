"""Predictor: load a model once, predict many tracks.

Decoding (the CPU-heavy part) runs in worker processes and streams into the model, which
runs batched over the windows of several tracks at once, on CUDA when available (bf16
autocast) or the CPU. Results come back in input order as soon as a track is complete.

This is the one inference path: the beets plugin, ``lgfn predict`` and every measurement
predict through it (``lgfn robustness`` with files; ``lgfn evaluate``, ``compare`` and
``crossval`` with clips already decoded into the feature cache, as ``TrackInput.samples``,
lgfn_model/evaluation/predicting.py). Its parts, one job
each: ``tracks`` (the values in and out), ``decoding`` (worker processes), ``text_overlap``
(lyrics in a thread beside the model), ``oom`` (GPU out-of-memory fallback), ``pooling``
(window outputs to a track's result), ``device`` (device and precision policy).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lgfn_model.data.audio import DecodedAudio, decode_audio
from lgfn_model.data.lyrics import Lyrics
from lgfn_model.data.windows import cut_windows
from lgfn_model.model.config import LGFNConfig
from lgfn_model.model.network import LGFN, TrackLines, stack_lines
from lgfn_model.model.outputs import TrackPrediction
from lgfn_model.runtime.checkpoint import load_checkpoint
from lgfn_model.runtime.decoding import Decoded, decode_stream, default_workers
from lgfn_model.runtime.device import resolve_device, resolve_precision
from lgfn_model.runtime.fold import fold_batch_norms
from lgfn_model.runtime.heap import keep_large_buffers_in_heap
from lgfn_model.runtime.oom import OutOfMemoryFallback, cpu_copy
from lgfn_model.runtime.pooling import track_prediction
from lgfn_model.runtime.text_overlap import (
    TextOverlap,
    collect_lyrics,
    one_thread_on,
    overlap_pays,
)
from lgfn_model.runtime.threads import choose_threads
from lgfn_model.runtime.tracks import (
    PendingTrack,
    PredictorStats,
    Slices,
    TrackInput,
    TrackResult,
    lyrics_only_windows,
    ready_tracks,
)
from lgfn_model.text.int8 import int8_available

__all__ = ["Predictor", "PredictorStats", "TrackInput", "TrackResult", "default_workers"]

_log = logging.getLogger(__name__)


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
        # Exact to float rounding and a cheaper CPU forward pass (lgfn_model/runtime/fold.py);
        # the model is this predictor's from now on and cannot be trained.
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
        """Where warnings go (GPU out of memory) when ``predict_many`` is given no ``warn``."""
        self._stream_warn = self.warn
        self._cpu_copy: LGFN | None = None
        self._oom = OutOfMemoryFallback(device)
        # On the CPU the lyrics of one track are encoded in a thread while the model runs on
        # the windows of the tracks before it, when the two are of similar cost
        # (runtime/text_overlap.py). Off for GPUs, where text is cheap. One thread for the
        # model leaves none for the text thread to share.
        self.overlap_text = overlap_text and device.type == "cpu" and self.threads >= 2
        self._text = TextOverlap(enabled=False)

    @classmethod
    def load(
        cls,
        checkpoint: str | Path | None = None,
        device: str | torch.device = "auto",
        batch_size: int = 32,
        workers: int | None = None,
        precision: str = "auto",
        threads: int | None = None,
        text_encoder: Any = None,
    ) -> Predictor:
        """Load a checkpoint folder (None: the model shipped with the package); ``threads``
        None chooses the CPU thread count from the cores free (lgfn_model/runtime/threads.py).
        ``text_encoder`` replaces the lyrics encoder the precision would choose (measurements
        of one encoder against another)."""
        resolved = resolve_device(device)
        model = load_checkpoint(checkpoint, device="cpu")
        return cls(
            model,
            resolved,
            batch_size=batch_size,
            workers=workers,
            precision=precision,
            threads=threads,
            text_encoder=text_encoder,
        )

    @property
    def version(self) -> str:
        return self.config.version

    @property
    def text_encoder(self) -> Any:
        # Loaded on first use: a library of instrumentals never pays for it.
        if self._text_encoder is None:
            from lgfn_model.text import load_text_encoder

            # The lyrics encoder follows the model's precision: bf16 on CPUs with hardware
            # bf16 and on GPUs; other CPUs under 'auto' get int8 Linear layers; 'fp32' keeps
            # the float32 reference. What each costs and changes: docs/text-encoder.md.
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

    def share_text_encoder(self, other: Predictor) -> bool:
        """Use ``other``'s lyrics encoder (and its line cache) if it is the one this predictor
        would load: the same encoder, device and precision. Whether it was shared."""
        same = (self.config.text_encoder, self.device, self.text_precision) == (
            other.config.text_encoder,
            other.device,
            other.text_precision,
        )
        if same:
            self._text_encoder = other.text_encoder
        return same

    # -- public API -------------------------------------------------------------------------

    def predict(self, audio: str | Path, lyrics: Lyrics | None = None) -> TrackPrediction:
        """One track; raises AudioDecodeError with a one-line reason on unreadable audio."""
        item = TrackInput(Path(audio), lyrics)
        decoded = decode_audio(item.audio, self.config.audio.sample_rate)
        pending = self._prepare(0, item, decoded)
        results = list(self._run_model([pending]))
        return results[0].prediction  # type: ignore[return-value]

    def predict_many(
        self,
        inputs: Iterable[TrackInput],
        on_decoded: Callable[[TrackInput], None] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> Iterator[TrackResult]:
        """Stream results in input order; a track that fails yields a result with ``error``.
        ``warn``: where this stream's warnings go (default: :attr:`warn`), so a shared
        predictor's callers each get their own."""
        decoded = decode_stream(iter(inputs), self.config.audio.sample_rate, self.workers)
        self._text = TextOverlap(enabled=self.overlap_text)
        self._stream_warn = warn or self.warn
        with self._text.running():
            yield from self._batched(decoded, on_decoded)

    # -- batching -------------------------------------------------------------------------

    def _batched(
        self,
        decoded: Iterator[Decoded],
        on_decoded: Callable[[TrackInput], None] | None,
    ) -> Iterator[TrackResult]:
        waiting: list[PendingTrack | TrackResult] = []
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
            collect_lyrics(waiting, keep_newest=True, stats=self.stats)
            if sum(p.remaining for p in ready_tracks(waiting)) >= self.batch_size:
                yield from self._flush(waiting, final=False)
        yield from self._flush(waiting, final=True)

    def _flush(
        self, waiting: list[PendingTrack | TrackResult], final: bool
    ) -> Iterator[TrackResult]:
        if final:
            collect_lyrics(waiting, keep_newest=False, stats=self.stats)
        for _ in self._run_batches(ready_tracks(waiting), final):
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

    def _run_model(self, pending: list[PendingTrack]) -> Iterator[TrackResult]:
        for _ in self._run_batches(pending, final=True):
            pass
        for track in pending:
            yield TrackResult(track.item, prediction=self._finish(track))

    def _run_batches(self, pending: list[PendingTrack], final: bool) -> Iterator[None]:
        """Run full batches of windows (and, when final, the remainder) through the model."""
        while True:
            remaining = sum(p.remaining for p in pending)
            if remaining == 0 or (remaining < self.batch_size and not final):
                return
            batch: Slices = []
            budget = self.batch_size
            for track in pending:
                if budget == 0:
                    break
                take = min(budget, track.remaining)
                if take > 0:
                    batch.append((track, track.next_window, track.next_window + take))
                    track.next_window += take
                    budget -= take
            self._forward(batch)
            yield None

    # -- model ----------------------------------------------------------------------------

    def _forward(self, batch: Slices) -> None:
        """Run one batch, in thread shares beside the text thread, with the out-of-memory
        fallback (runtime/oom.py)."""
        started = time.perf_counter()
        try:
            for part in self._text.thread_shares(batch, self.batch_size):
                self._oom.run(part, self._forward_part, self.stats, self._stream_warn)
        finally:
            self.stats.model_s += time.perf_counter() - started

    def _forward_part(self, batch: Slices, on_cpu: bool) -> None:
        if on_cpu:
            self._forward_on(batch, self._cpu_model(), torch.device("cpu"))
        else:
            self._forward_on(batch, self.model, self.device)

    def _cpu_model(self) -> LGFN:
        if self._cpu_copy is None:
            self._cpu_copy = cpu_copy(self.model, self._folded, self.precision)
        return self._cpu_copy

    @torch.inference_mode()
    def _forward_on(self, batch: Slices, model: LGFN, device: torch.device) -> None:
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
        present = None  # all windows have audio: the model's default
        if not all(t.has_audio for t, _, _ in batch):
            flags = np.concatenate([np.full(b - a, t.has_audio) for t, a, b in batch])
            present = torch.from_numpy(flags).to(device)
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if device.type == "cuda" and self.dtype == torch.bfloat16
            else nullcontext()
        )
        with autocast:
            out = model(waveforms, window_starts, lyrics, present)
        logits = out.mood_logits.float()
        outputs = {
            "logits": logits.cpu().numpy(),
            "probabilities": torch.softmax(logits, dim=-1).cpu().numpy(),
            "valence": out.valence.float().cpu().numpy(),
            "arousal": out.arousal.float().cpu().numpy(),
            "gate": out.gate.float().cpu().numpy(),
            "attention": out.attention.float().cpu().numpy(),
            "embedding": out.embedding.float().cpu().numpy(),
        }
        offset = 0
        for track, a, b in batch:
            n = b - a
            part = {key: value[offset : offset + n] for key, value in outputs.items()}
            part["attention"] = part["attention"][:, :, : len(track.lines)]
            track.outputs.append(part)
            offset += n
        self.stats.windows += offset

    # -- per-track preparation and aggregation ---------------------------------------------

    def _prepare(self, index: int, item: TrackInput, audio: DecodedAudio) -> PendingTrack:
        lyrics = item.lyrics if self.config.fusion != "audio_only" else None
        has_audio = len(audio.samples) > 0
        if has_audio:
            windows, starts = cut_windows(audio.samples, self.config.audio)
        elif lyrics:
            windows, starts = lyrics_only_windows(lyrics, self.config.audio)
        else:
            raise ValueError("no audio and no lyrics to predict from")
        track = PendingTrack(index, item, audio, windows, starts, None, [], False)
        track.has_audio = has_audio
        if lyrics:
            kept = lyrics.lines[: self.config.max_lines]
            track.lines = [line.text for line in kept]
            track.line_starts = [line.start for line in kept]
            track.synced = all(line.start is not None for line in kept)
            encoder = self.text_encoder  # loaded here, not in the text thread
            # The whole text is every line, as training reads the file (not only the kept ones).
            every_line = lyrics.texts if self._reads_whole_text else None
            job = (encoder, track.lines, track.line_starts, audio.duration or None, every_line)
            if self._text.active and self._overlap_pays():
                track.lyrics_job = self._text.submit(self._encode_lyrics, *job)
            else:
                with one_thread_on(self.device):
                    track.lyrics = self._encode_lyrics(*job)
        return track

    def _overlap_pays(self) -> bool:
        """Whether the next lyrics go to the text thread (runtime/text_overlap.py)."""
        return overlap_pays(self.stats)

    def _encode_lyrics(
        self,
        encoder: Any,
        lines: list[str],
        line_starts: list[float | None],
        duration: float | None,
        every_line: list[str] | None = None,
    ) -> TrackLines:
        """``lines`` (the kept ones) as the model reads them; ``every_line``, the file's lines,
        for a model that reads the whole text (``song_text``) or its lines in it
        (``line_context``)."""
        started = time.perf_counter()
        song = None
        if self.config.line_context and every_line:
            in_context, whole = encoder.encode_in_context(every_line)
            embeddings = in_context[: len(lines)]
            song = whole if self.config.song_text else None
        else:
            embeddings = encoder.encode(lines)
            if self.config.song_text and every_line and "".join(every_line).strip():
                song = encoder.encode_documents(["\n".join(every_line)])[0]
        encoded = TrackLines.timed(embeddings.float().cpu(), line_starts, duration)
        if song is not None:
            encoded.song = song.float().cpu()
        self.stats.text_s += time.perf_counter() - started
        return encoded

    @property
    def _reads_whole_text(self) -> bool:
        return self.config.song_text or self.config.line_context

    def _finish(self, track: PendingTrack) -> TrackPrediction:
        parts = {key: np.concatenate([o[key] for o in track.outputs]) for key in track.outputs[0]}
        audio = self.config.audio
        # A track without audio: its windows' span stands for its duration.
        duration = (
            track.audio.duration if track.has_audio else track.starts[-1] + audio.window_seconds
        )
        self.stats.tracks += 1
        self.stats.audio_seconds += float(track.audio.duration)
        return track_prediction(
            parts, track.starts, list(self.config.labels), audio.window_seconds, float(duration),
            self.version, track.lines, track.synced, track.line_starts,
        )  # fmt: skip
