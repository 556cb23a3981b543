"""Lyrics beside the model: on the CPU, the newest decoded track's lyrics encode in a thread
(``lgfn-text``) while the model runs on the windows of the tracks before it.

torch's thread count is one setting for the whole process, so the two share it: while the
text thread works each gets half the cores, otherwise the model has them all. Whether the
overlap pays, and why a lone lyrics encoding runs on one thread, is measured in
docs/performance.md (CPUs without hardware bf16, and "A busy machine").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import torch

from lgfn_model.runtime.tracks import PendingTrack, PredictorStats, Slices, TrackResult, split_batch


class TextOverlap:
    """The text thread of one predictor and the thread shares around it."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.pool: ThreadPoolExecutor | None = None
        self.job: Future | None = None
        self.all_threads = self.shared_threads = 1

    @property
    def active(self) -> bool:
        """Inside :meth:`running`: lyrics may go to the text thread."""
        return self.pool is not None

    @contextmanager
    def running(self) -> Iterator[None]:
        """The text thread, for one ``predict_many`` run (nothing when not enabled)."""
        if not self.enabled:
            yield
            return
        self.all_threads = torch.get_num_threads()
        self.shared_threads = max(1, self.all_threads // 2)
        try:
            with ThreadPoolExecutor(1, thread_name_prefix="lgfn-text") as pool:
                self.pool = pool
                yield
        finally:
            self.pool = None
            torch.set_num_threads(self.all_threads)

    def submit(self, encode: Callable[..., Any], *args: Any) -> Future:
        """Encode in the text thread; the model gets half the threads until it is done."""
        assert self.pool is not None
        self.job = self.pool.submit(encode, *args)
        torch.set_num_threads(self.shared_threads)
        return self.job

    def thread_shares(self, batch: Slices, batch_size: int) -> Iterator[Slices]:
        """``batch`` in parts, with torch's thread count set for each.

        The model runs in quarter batches while the text thread is busy, so that when the
        lyrics are done the rest of the batch gets every core again (a heavy model would
        otherwise run a whole batch on half of them after a short lyrics job)."""
        if self.pool is None:
            yield batch
            return
        quarter = max(1, batch_size // 4)
        while batch:
            busy = self.job is not None and not self.job.done()
            torch.set_num_threads(self.shared_threads if busy else self.all_threads)
            if busy and sum(b - a for _, a, b in batch) > quarter:
                part, batch = split_batch(batch, quarter)
            else:
                part, batch = batch, []
            yield part


def overlap_pays(stats: PredictorStats) -> bool:
    """Whether to encode the next lyrics in the text thread: while they cost at least half as
    much as the model does. Below that, half the cores slow the model's convolutions more than
    the overlap saves (docs/performance.md, CPUs without hardware bf16); the first tracks are
    always overlapped, to measure."""
    if stats.tracks < 2 or stats.model_s == 0:
        return True
    return stats.text_s >= 0.5 * stats.model_s


def collect_lyrics(
    waiting: list[PendingTrack | TrackResult], keep_newest: bool, stats: PredictorStats
) -> None:
    """Wait for the lyrics encodings of the tracks in ``waiting`` (all but the newest, when
    ``keep_newest``); a track whose lyrics failed to encode becomes a failed result."""
    last = len(waiting) - 1
    for position, track in enumerate(waiting):
        if not isinstance(track, PendingTrack) or track.lyrics_job is None:
            continue
        if keep_newest and position == last:
            break
        try:
            track.lyrics = track.lyrics_job.result()
        except Exception as failure:  # bad lyrics must not stop the run
            stats.failed += 1
            waiting[position] = TrackResult(track.item, error=f"{track.item.audio}: {failure}")
        else:
            track.lyrics_job = None


@contextmanager
def one_thread_on(device: torch.device) -> Iterator[None]:
    """Run the lyrics encoder on one CPU thread: its matrices (a song's lines) are small, and
    beside a busy decoding worker a second thread mostly waits (docs/performance.md,
    "A busy machine")."""
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
