"""Measuring through the predictor: labelled clips in, track outputs out, by the code users run.

``lgfn evaluate``, ``lgfn compare`` and ``lgfn crossval`` score a model with
:func:`predict_examples`, which hands each clip to
:meth:`~lgfn_model.runtime.predictor.Predictor.predict_many`: the same windowing, batching,
lyrics encoding (the predictor's own encoder, in its int8 / bf16 / float32 policy), text-thread
overlap, precision, out-of-memory fallback and pooling (``lgfn_model/runtime/pooling.py``) as a
user's file. Only decoding is skipped: the audio comes already decoded from the feature cache
(``TrackInput.samples``), and white noise for ``--snr`` is added to those samples before they
enter the predictor. Lyrics are read from their files and parsed as the plugin's are; the
cache's float32 line vectors are not used (the predictor's encoder keeps its own line cache
within a run, so noise runs after the clean one encode nothing again). Lyrics-only examples
(NJU, no audio) go in with empty samples and get the predictor's lyrics-only windows.

No other path remains: training itself has no per-epoch validation, and its loss pools
windows by the same rule in torch (``lgfn_model.model.network.pool_windows``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lgfn_model.data.lyrics import Lyrics, read_lyrics_file
from lgfn_model.runtime.tracks import TrackInput
from lgfn_model.training.batches import add_noise
from lgfn_model.training.cache import FeatureCache
from lgfn_model.training.datasets import Example

if TYPE_CHECKING:
    from lgfn_model.runtime.predictor import Predictor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Clip:
    """A labelled example ready for the predictor: its audio is in the feature cache."""

    example: Example
    has_audio: bool
    lyrics: Lyrics | None

    @property
    def has_lyrics(self) -> bool:
        return bool(self.lyrics)


def load_clips(examples: Sequence[Example], cache: FeatureCache, workers: int = 2) -> list[Clip]:
    """``examples`` with their audio decoded into ``cache`` (where not yet) and their lyrics
    read. An example whose audio cannot be decoded is dropped with a warning, and so is one
    left with neither audio nor lyrics; unreadable lyrics count as none."""
    errors = cache.ensure_audio([e.audio for e in examples if e.audio], workers=workers)
    failed = {str(Path(p)) for p in errors}
    clips = []
    for example in examples:
        if example.audio and str(Path(example.audio)) in failed:
            log.warning("skipped %s: %s", example.audio, errors[Path(example.audio)])
            continue
        lyrics = None
        if example.lyrics:
            try:
                lyrics = read_lyrics_file(str(example.lyrics))
            except OSError as error:
                log.warning("skipped the lyrics of %s: %s", example.lyrics, error)
        clip = Clip(example, example.audio is not None, lyrics)
        if clip.has_audio or clip.has_lyrics:
            clips.append(clip)
    return clips


def predict_examples(
    predictor: Predictor,
    clips: Sequence[Clip],
    cache: FeatureCache,
    snr_db: float | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Track outputs of ``clips`` through ``predictor``, in order: ``probs`` (n, labels),
    ``p_valence`` and ``p_arousal`` (n,) as P(positive), ``gate`` (n,) the mean audio gate,
    ``embedding`` (n, D) the track embeddings.

    With ``snr_db``, white noise at that SNR is added to each clip's samples, drawn in clip
    order from one generator seeded by ``seed``. A clip the predictor fails on is an error
    (held-out clips are known to decode)."""
    rng = np.random.default_rng(seed)
    labels = list(predictor.config.labels)

    def inputs() -> Iterator[TrackInput]:
        for index, clip in enumerate(clips):
            example = clip.example
            if clip.has_audio:
                samples = cache.load_audio(example.audio)  # type: ignore[arg-type]
                if snr_db is not None:
                    samples = add_noise(samples, snr_db, rng)
            else:
                samples = np.zeros(0, dtype=np.float32)
            name = Path(example.audio or example.lyrics or example.id)
            yield TrackInput(name, clip.lyrics, key=index, samples=samples)

    probs = np.zeros((len(clips), len(labels)), dtype=np.float64)
    valence = np.zeros(len(clips), dtype=np.float64)
    arousal = np.zeros(len(clips), dtype=np.float64)
    gate = np.zeros(len(clips), dtype=np.float64)
    embedding = np.zeros((len(clips), predictor.config.embedding_dim), dtype=np.float32)
    for result in predictor.predict_many(inputs()):
        if result.prediction is None:
            raise RuntimeError(f"the predictor failed on a clip: {result.error}")
        index, prediction = result.input.key, result.prediction
        probs[index] = [prediction.probabilities[label] for label in labels]
        valence[index] = prediction.valence
        arousal[index] = prediction.arousal
        gate[index] = prediction.gate_audio
        embedding[index] = prediction.embedding
    return {
        "probs": probs,
        "p_valence": (valence + 1) / 2,
        "p_arousal": (arousal + 1) / 2,
        "gate": gate,
        "embedding": embedding,
    }


def measuring_predictor(
    checkpoint: str | Path | None,
    device: str = "auto",
    precision: str = "auto",
    threads: int | None = None,
    batch_size: int = 32,
) -> Predictor:
    """The predictor a measurement runs: as a user's, but decoding nothing itself (the clips
    come from the cache, so no decoding processes)."""
    from lgfn_model.runtime.predictor import Predictor

    return Predictor.load(
        checkpoint,
        device=device,
        batch_size=batch_size,
        workers=0,
        precision=precision,
        threads=threads,
    )


def seen_test_note(checkpoint: str | Path | None, split_name: str) -> str | None:
    """A warning when ``checkpoint`` trained on every development example (`lgfn train
    --split all`, as the shipped default): ``split_name``'s test clips are then not unseen by
    it, and its figures on them flatter it. None when the checkpoint never saw them."""
    from lgfn_model.runtime.checkpoint import checkpoint_metadata
    from lgfn_model.runtime.checkpoint_files import checkpoint_version, resolve_checkpoint

    directory = resolve_checkpoint(checkpoint)
    if checkpoint_metadata(directory).get("trained_on") != "all":
        return None
    return (
        f"note: {checkpoint_version(directory)} was trained on all development data, this "
        f"{split_name} split's test clips included: these figures are not of unseen songs (its "
        "recipe's cross-validation is: docs/cross-validation.md)"
    )
