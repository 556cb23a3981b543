"""Decoding for the predictor: tracks decoded in spawned worker processes (numpy only),
streamed back in input order with a bounded look-ahead; tracks that come already decoded
(``TrackInput.samples``) pass straight through, in their place."""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor

import numpy as np

from lgfn_model.data.audio import DecodedAudio, decode_or_error
from lgfn_model.runtime.parent_watch import SpawnedOnMainThread, end_with_parent
from lgfn_model.runtime.tracks import TrackInput

Decoded = tuple[TrackInput, DecodedAudio | None, str | None, float]
"""(input, decoded audio or None, one-line error or None, seconds spent decoding)"""


def default_workers() -> int:
    # One process keeps decoding ahead of a CPU model; more help when a GPU does the model.
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def decode_stream(
    inputs: Iterator[TrackInput], sample_rate: int, workers: int
) -> Iterator[Decoded]:
    """Each input decoded (or its error), in input order; ``workers`` 0 decodes inline."""
    if workers == 0:
        for item in inputs:
            yield (
                given(item, sample_rate) if item.samples is not None else _decode(item, sample_rate)
            )
        return
    # spawn, not fork: forking a process that holds torch's thread pools can deadlock.
    context = multiprocessing.get_context("spawn")
    lookahead = 2 * workers + 2
    # Each worker ends when this process does, even by kill -9 (runtime/parent_watch.py).
    watch = (os.getpid(), SpawnedOnMainThread())
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=end_with_parent, initargs=watch
    ) as pool:
        queue: deque[tuple[TrackInput, Future]] = deque()
        for item in inputs:
            if item.samples is not None:  # no process needed, but it keeps its place
                done: Future = Future()
                done.set_result(given(item, sample_rate)[1:])
                queue.append((item, done))
            else:
                queue.append((item, pool.submit(decode_or_error, item.audio, sample_rate)))
            while len(queue) >= lookahead:
                yield _result_of(*queue.popleft())
        while queue:
            yield _result_of(*queue.popleft())


def given(item: TrackInput, sample_rate: int) -> Decoded:
    """An input that comes with its samples, as if just decoded."""
    samples = np.ascontiguousarray(item.samples, dtype=np.float32)
    if samples.ndim != 1:
        return item, None, f"{item.audio}: samples must be mono, got shape {samples.shape}", 0.0
    duration = len(samples) / sample_rate
    return item, DecodedAudio(samples, sample_rate, sample_rate, 1, duration), None, 0.0


def _decode(item: TrackInput, sample_rate: int) -> Decoded:
    return (item, *decode_or_error(item.audio, sample_rate))


def _result_of(item: TrackInput, future: Future) -> Decoded:
    try:
        return (item, *future.result())
    except Exception as error:  # the worker process died (e.g. killed for memory)
        return item, None, f"{item.audio}: decoder process failed ({type(error).__name__})", 0.0
