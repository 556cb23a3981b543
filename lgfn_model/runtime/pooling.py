"""From a track's window outputs to the track's result: the one pooling of LGFN.

A track is analysed as several windows; its mood is the softmax of the mean of its windows'
mood logits, its valence and arousal the means of theirs, its audio gate the mean of the gate
over every frame of every window. :func:`pool_track` is that rule, in numpy, and it is the
only place it is written for inference: the predictor (users' files, ``lgfn predict``, the
beets plugin) and every measurement (``lgfn evaluate``, ``lgfn compare``, ``lgfn robustness``,
``lgfn crossval``), which all predict through :class:`~lgfn_model.runtime.predictor.Predictor`.

Training optimises the same rule on torch tensors with gradients
(:func:`lgfn_model.model.network.pool_windows`: mean of window logits, then the loss's
softmax); a test checks that both give the same track outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lgfn_model.model.outputs import TrackPrediction, WindowPrediction


@dataclass(frozen=True)
class PooledTrack:
    """One track's pooled outputs."""

    probabilities: np.ndarray
    """(n_labels,) float64: softmax of the mean window logits."""
    valence: float
    arousal: float
    gate_audio: float
    """Mean audio share of the gate over all frames of all windows."""
    embedding: np.ndarray | None = None
    """(D,) float32: mean of the windows' embeddings (the mood head of it is the mean logits)."""


def pool_track(
    logits: np.ndarray,
    valence: np.ndarray,
    arousal: np.ndarray,
    gate: np.ndarray,
    embedding: np.ndarray | None = None,
) -> PooledTrack:
    """Pool one track's windows: ``logits`` (W, labels), ``valence`` and ``arousal`` (W,),
    ``gate`` (W, T) or (W,), ``embedding`` (W, D)."""
    mean_logits = np.asarray(logits, dtype=np.float32).mean(axis=0).astype(np.float64)
    probabilities = np.exp(mean_logits - mean_logits.max())
    probabilities /= probabilities.sum()
    return PooledTrack(
        probabilities=probabilities,
        valence=float(np.asarray(valence, dtype=np.float32).mean()),
        arousal=float(np.asarray(arousal, dtype=np.float32).mean()),
        gate_audio=float(np.asarray(gate, dtype=np.float32).mean()),
        embedding=None
        if embedding is None
        else np.asarray(embedding, dtype=np.float32).mean(axis=0),
    )


def track_prediction(
    parts: dict[str, np.ndarray],
    starts: np.ndarray,
    labels: list[str],
    window_seconds: float,
    duration: float,
    version: str,
    lines: list[str],
    synced: bool,
    line_starts: list[float | None],
) -> TrackPrediction:
    """The TrackPrediction of one track from its windows' outputs ``parts`` (``logits``,
    ``probabilities``, ``valence``, ``arousal``, ``gate``, ``attention``, window-major)."""
    pooled = pool_track(
        parts["logits"], parts["valence"], parts["arousal"], parts["gate"], parts.get("embedding")
    )
    windows = [
        WindowPrediction(
            start=float(start),
            end=float(min(start + window_seconds, max(duration, window_seconds))),
            probabilities=_label_dict(labels, parts["probabilities"][i]),
            valence=float(parts["valence"][i]),
            arousal=float(parts["arousal"][i]),
            gate=[float(g) for g in parts["gate"][i]],
            attention=parts["attention"][i].round(4).tolist() if lines else [],
        )
        for i, start in enumerate(starts)
    ]
    probabilities = _label_dict(labels, pooled.probabilities)
    return TrackPrediction(
        mood=max(probabilities, key=probabilities.__getitem__),
        probabilities=probabilities,
        valence=pooled.valence,
        arousal=pooled.arousal,
        gate_audio=pooled.gate_audio,
        gate_lyrics=1.0 - pooled.gate_audio,
        duration=float(duration),
        model_version=version,
        lyrics_lines=lines,
        lyrics_synced=synced,
        lyrics_starts=line_starts,
        windows=windows,
        embedding=[] if pooled.embedding is None else pooled.embedding.tolist(),
    )


def _label_dict(labels: list[str], values: np.ndarray) -> dict[str, float]:
    return {label: float(value) for label, value in zip(labels, values, strict=True)}
