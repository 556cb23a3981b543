"""Turning cached examples into training batches: one random window per example, with its
lyric line times built as the predictor builds them (``stack_lines``). Evaluation does not
batch here: it predicts through the Predictor (``lgfn_model/evaluation/predicting.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from lgfn_model.model.components import PretrainedTagger
from lgfn_model.model.config import MOODS, LGFNConfig
from lgfn_model.model.network import LyricsBatch, TrackLines, stack_lines
from lgfn_model.runtime.tracks import LYRICS_ONLY_TAIL_SECONDS
from lgfn_model.training.cache import LyricFeatures
from lgfn_model.training.dataset_weighting import example_weights
from lgfn_model.training.datasets import Example

if TYPE_CHECKING:
    from lgfn_model.training.lyric_pairing import LyricDonors

PATCH_SAMPLES = PretrainedTagger.PATCH_SAMPLES


@dataclass
class LoadedExample:
    """An example with its cached audio (float16, mono) and lyric line embeddings."""

    example: Example
    samples: np.ndarray | None
    lyrics: LyricFeatures | None
    # (patches, F) on the 3 s grid, see pretrained_cache; F: 250 musicnn-msd, 200 musicnn-jamendo
    pretrained: np.ndarray | None = None
    # The same features of seeded noisy copies of the clip, by SNR in dB (pretrained_cache):
    # what a noisy training window's frozen branch reads (``training_batch(pretrained_noise=)``).
    noisy_pretrained: dict[float, np.ndarray] | None = None

    @property
    def duration(self) -> float | None:
        return None if self.samples is None else len(self.samples)


@dataclass
class Targets:
    mood: torch.Tensor  # (B,) long, -1 where unlabelled
    valence: torch.Tensor  # (B,) float in {-1, 1}, NaN where unlabelled
    arousal: torch.Tensor
    # (B, moods) bool: the moods each example's dataset can name (``--mood-mask``); None: all.
    mood_allowed: torch.Tensor | None = None
    # (B,) float: each example's loss weight by its dataset (``--dataset-weight``); None: all 1.
    weight: torch.Tensor | None = None

    def to(self, device: torch.device) -> Targets:
        allowed = None if self.mood_allowed is None else self.mood_allowed.to(device)
        weight = None if self.weight is None else self.weight.to(device)
        return Targets(
            self.mood.to(device), self.valence.to(device), self.arousal.to(device), allowed, weight
        )


@dataclass
class Batch:
    waveforms: torch.Tensor  # (W, S)
    starts: torch.Tensor  # (W,)
    lyrics: LyricsBatch | None
    audio_present: torch.Tensor  # (W,) bool
    track_index: torch.Tensor  # (W,) long: which example each window belongs to
    n_tracks: int
    pretrained: torch.Tensor | None = None  # (W, P, F) cached pretrained-branch features
    # (W, S) the windows before noise and clipping, for a branch that should read clean audio
    clean_waveforms: torch.Tensor | None = None

    def to(self, device: torch.device) -> Batch:
        return Batch(
            self.waveforms.to(device, non_blocking=True),
            self.starts.to(device),
            None if self.lyrics is None else self.lyrics.to(device),
            self.audio_present.to(device),
            self.track_index.to(device),
            self.n_tracks,
            None if self.pretrained is None else self.pretrained.to(device),
            None if self.clean_waveforms is None else self.clean_waveforms.to(device),
        )


def targets_of(
    examples: list[Example],
    moods_by_dataset: dict[str, tuple[int, ...]] | None = None,
    dataset_weights: dict[str, float] | None = None,
) -> Targets:
    """The examples' labels; with ``moods_by_dataset`` ({dataset: the mood indices it names}),
    also each example's allowed moods (all four for a dataset not in it); with
    ``dataset_weights``, each example's loss weight (1 for a dataset not in it)."""

    def signs(values: list[float | None]) -> torch.Tensor:
        return torch.tensor(
            [float("nan") if v is None else (1.0 if v > 0 else -1.0) for v in values]
        )

    return Targets(
        torch.tensor([-1 if e.mood is None else e.mood for e in examples], dtype=torch.long),
        signs([e.valence for e in examples]),
        signs([e.arousal for e in examples]),
        None if moods_by_dataset is None else _allowed_moods(examples, moods_by_dataset),
        example_weights([e.dataset for e in examples], dataset_weights or {}),
    )


def _allowed_moods(
    examples: list[Example], moods_by_dataset: dict[str, tuple[int, ...]]
) -> torch.Tensor:
    allowed = torch.ones(len(examples), len(MOODS), dtype=torch.bool)
    for row, example in enumerate(examples):
        named = moods_by_dataset.get(example.dataset)
        if named is not None:
            allowed[row] = False
            allowed[row, list(named)] = True
    return allowed


def _spread_over(lyrics: LyricFeatures, seconds: float) -> LyricFeatures:
    starts = np.linspace(0.0, seconds, len(lyrics), endpoint=False, dtype=np.float32)
    return LyricFeatures(lyrics.embeddings, starts, lyrics.song)


def _lyrics_span(lyrics: LyricFeatures | None) -> float:
    if lyrics is None or len(lyrics) == 0 or np.isnan(lyrics.starts).any():
        return 0.0
    return float(np.nanmax(lyrics.starts)) + LYRICS_ONLY_TAIL_SECONDS


def _stack_lyrics(
    parts: list[tuple[LyricFeatures | None, float | None, int]], config: LGFNConfig
) -> LyricsBatch | None:
    """Each example's lines (capped at max_lines) for its windows, exactly as the predictor
    builds them (``lgfn_model.model.network.stack_lines``)."""
    tracks = []
    for lyrics, duration, count in parts:
        lines = None
        if lyrics is not None and len(lyrics) > 0:
            n = min(len(lyrics), config.max_lines)
            embeddings = torch.from_numpy(np.asarray(lyrics.embeddings[:n], dtype=np.float32))
            lines = TrackLines.timed(embeddings, lyrics.starts[:n].tolist(), duration)
            if config.song_text and lyrics.song is not None:
                lines.song = torch.from_numpy(np.asarray(lyrics.song, dtype=np.float32))
        tracks.append((lines, count))
    return stack_lines(tracks, config.text_dim)


def training_batch(
    items: list[LoadedExample],
    config: LGFNConfig,
    rng: np.random.Generator,
    drop_lyrics: float = 0.0,
    noise_snr_db: tuple[float, float] | None = None,
    pseudo_sync: float = 0.0,
    clip_chance: float = 0.0,
    keep_clean: bool = False,
    pretrained_noise: tuple[float, ...] = (),
    pair_lyrics: float = 0.0,
    donors: LyricDonors | None = None,
) -> Batch:
    """One random window per example (random crop of the clip, or of the lyrics' span).

    ``keep_clean``: also return the windows as they were before noise and clipping
    (``Batch.clean_waveforms``), for a distilled student that should read clean audio the way
    the default model's cached musicnn features do.

    ``clip_chance``: the chance that a window is made louder by 6-12 dB and hard-clipped, as
    users' loud masters and the robustness check's +6 dB copies are.

    ``pretrained_noise``: SNRs (dB) of the noisy feature copies the items carry
    (``LoadedExample.noisy_pretrained``). A window that gets noise then takes its SNR from this
    list instead of ``noise_snr_db``'s range, and its cached pretrained features are those of
    the clip at that SNR, so the frozen branch sees the noise the other branches see.

    ``pseudo_sync``: the chance that an audio example's plain lyrics are given start times
    spread evenly over the clip. No training set pairs audio with synced lyrics, so without
    this the gate would meet "audio + synced lyrics" for the first time in users' libraries.

    ``pair_lyrics``: the chance that a clip with a mood and no lyrics of its own is given the
    untimed lyrics of a lyrics-only example of the same mood, drawn from ``donors``
    (``lyric_pairing``); the borrowed words then go through the lyrics drop and pseudo-sync
    like a song's own.
    """
    audio = config.audio
    size = audio.window_samples
    waves = np.zeros((len(items), size), dtype=np.float32)
    starts = np.zeros(len(items), dtype=np.float32)
    present = np.zeros(len(items), dtype=bool)
    # With cached pretrained features (the model's own musicnn branch, or a distillation
    # teacher's), windows start on their 3 s grid so the cache applies.
    with_audio = [item for item in items if item.samples is not None]
    use_cache = bool(with_audio) and all(item.pretrained is not None for item in with_audio)
    grid = PATCH_SAMPLES if use_cache else 1
    per_window = size // PATCH_SAMPLES
    # The features' width is the branch's (config.PRETRAINED_FEATURES), as cached.
    width = next((i.pretrained.shape[-1] for i in with_audio if i.pretrained is not None), 0)
    features = np.zeros((len(items), per_window, width), dtype=np.float32)
    clean = np.zeros_like(waves) if keep_clean else None
    parts = []
    for i, item in enumerate(items):
        duration = None
        if item.samples is not None:
            samples = item.samples
            offset = int(rng.integers(0, max(0, len(samples) - size) // grid + 1)) * grid
            source = item.pretrained
            chunk = np.asarray(samples[offset : offset + size], dtype=np.float32)
            waves[i, : len(chunk)] = chunk
            if keep_clean:
                clean[i] = waves[i]
            if noise_snr_db is not None and rng.random() < 0.5:
                if pretrained_noise and use_cache:
                    snr = pretrained_noise[int(rng.integers(len(pretrained_noise)))]
                    source = _noisy_features(item, snr)
                else:
                    snr = float(rng.uniform(*noise_snr_db))
                waves[i] = add_noise(waves[i], snr, rng)
            if use_cache:
                first = offset // PATCH_SAMPLES
                features[i] = source[first : first + per_window]
            # No draw at all when off: the random stream (and so every model trained by the
            # default recipe, the shipped one included) stays as it was before this option.
            if clip_chance > 0 and rng.random() < clip_chance:
                waves[i] = clip_loud(waves[i], float(rng.uniform(6.0, 12.0)))
            starts[i] = offset / audio.sample_rate
            present[i] = True
            duration = len(samples) / audio.sample_rate
        else:
            span = _lyrics_span(item.lyrics)
            starts[i] = float(rng.uniform(0, max(0.0, span - audio.window_seconds)))
        lyrics = item.lyrics
        # As with clip_chance, no draw when off: other recipes' random streams stay as they were.
        wants = pair_lyrics > 0 and donors is not None and donors.wants(item)
        if wants and rng.random() < pair_lyrics:
            lyrics = donors.draw(item.example.mood, rng)  # type: ignore[arg-type,union-attr]
        if lyrics is not None and item.samples is not None:
            draw = rng.random()
            if draw < drop_lyrics:
                lyrics = None  # teach the gate and heads to work without words too
            elif draw < drop_lyrics + pseudo_sync and not lyrics.synced and len(lyrics) > 0:
                lyrics = _spread_over(lyrics, len(item.samples) / audio.sample_rate)
        parts.append((lyrics, duration, 1))
    return Batch(
        torch.from_numpy(waves),
        torch.from_numpy(starts),
        _stack_lyrics(parts, config),
        torch.from_numpy(present),
        torch.arange(len(items)),
        len(items),
        torch.from_numpy(features) if use_cache else None,
        None if clean is None else torch.from_numpy(clean),
    )


def _noisy_features(item: LoadedExample, snr_db: float) -> np.ndarray:
    copies = item.noisy_pretrained or {}
    if snr_db not in copies:
        raise ValueError(
            f"{item.example.id}: no cached pretrained features at {snr_db:g} dB SNR "
            "(attach_pretrained with the recipe's pretrained_noise fills them)"
        )
    return copies[snr_db]


def clip_loud(samples: np.ndarray, gain_db: float) -> np.ndarray:
    """``samples`` amplified by ``gain_db`` and hard-clipped to [-1, 1]."""
    return np.clip(samples * np.float32(10 ** (gain_db / 20)), -1.0, 1.0)


def add_noise(samples: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White noise at ``snr_db`` relative to the signal's mean power (silence stays silent)."""
    power = float(np.mean(np.square(samples, dtype=np.float64)))
    if power <= 0:
        return samples
    noise_power = power / (10 ** (snr_db / 10))
    noise = rng.standard_normal(len(samples)).astype(np.float32) * np.float32(np.sqrt(noise_power))
    return samples + noise
