"""Cache of the frozen pretrained branch's features, per 3 s patch of each training clip.

The musicnn tagger is frozen, and costs more than the rest of the model, so training computes
its features once per clip (patches on a fixed 3 s grid) and crops windows on that grid.
Stored next to the audio cache as ``<branch>-v1/<k[:2]>/<k>.npy`` (float16, (patches, F)):
the branch's name (``pretrained_audio``) is both the folder and part of the key, so each branch
has its own features (F: 250 for "musicnn-msd", 200 for "musicnn-jamendo").

With ``snr_db``, the features are those of a noisy copy of the clip instead: white noise at that
SNR relative to the whole clip's power (as ``lgfn evaluate --snr`` adds it), drawn from a seed
of the clip's cache key and the SNR, so every run and process stores the same copy. Stored as
``<branch>-snr<dB>-v1/``. Why: the branch is frozen and its features are cached, so without
these copies it only ever meets clean audio in training while the rest of the model learns
with noise, and at 0 dB SNR its features (and the model) fall apart (docs/robustness.md).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from lgfn_model.model.components import PretrainedTagger
from lgfn_model.training.batches import LoadedExample, add_noise
from lgfn_model.training.cache import FeatureCache, _atomic_write, _digest

if TYPE_CHECKING:
    from lgfn_model.model.network import LGFN

log = logging.getLogger(__name__)
VERSION = "1"


def grid_patches(n_samples: int, window_samples: int) -> int:
    """Patches cached for a clip: its whole 3 s grid, at least one (zero-padded) window."""
    size = PretrainedTagger.PATCH_SAMPLES
    return max(window_samples // size, -(-n_samples // size))


def snr_label(snr_db: float) -> str:
    """``0`` for 0.0, ``7.5`` for 7.5, ``-3`` for -3.0: the SNR as a folder name shows it."""
    return f"{snr_db:g}"


class PretrainedFeatureCache:
    def __init__(self, audio_cache: FeatureCache, branch: str, snr_db: float | None = None) -> None:
        self.audio_cache = audio_cache
        self.branch = branch
        self.snr_db = snr_db
        noisy = "" if snr_db is None else f"-snr{snr_label(snr_db)}"
        self.folder = audio_cache.root / f"{branch}{noisy}-v{VERSION}"

    def _key(self, source: str | Path) -> str:
        name = self.audio_cache.audio_file(source).name
        if self.snr_db is None:
            return _digest(VERSION, self.branch, name)
        return _digest(VERSION, self.branch, name, "snr", snr_label(self.snr_db))

    def path(self, source: str | Path) -> Path:
        key = self._key(source)
        return self.folder / key[:2] / f"{key}.npy"

    def clip_samples(self, source: str | Path) -> np.ndarray:
        """The clip as this cache's features see it: the cached samples, with this cache's
        seeded noise when it has an SNR."""
        samples = self.audio_cache.load_audio(source).astype(np.float32)
        if self.snr_db is None:
            return samples
        seed = int(self._key(source)[:16], 16)
        return add_noise(samples, self.snr_db, np.random.default_rng(seed))

    def load(self, source: str | Path) -> np.ndarray:
        return np.load(self.path(source), allow_pickle=False)

    @torch.no_grad()
    def ensure(
        self,
        sources: list[Path],
        tagger: PretrainedTagger,
        window_samples: int,
        device: torch.device,
        patches_per_batch: int = 48,
    ) -> None:
        """Compute and store features for every source not cached yet."""
        todo = [s for s in sources if not self.path(s).is_file()]
        if not todo:
            return
        what = self.branch if self.snr_db is None else f"{self.branch} (noisy, {self.snr_db:g} dB)"
        log.info("computing %s features for %d clips (cached for next time)", what, len(todo))
        tagger = tagger.to(device).eval()
        size = PretrainedTagger.PATCH_SAMPLES
        started = time.perf_counter()
        for done, source in enumerate(todo, 1):
            samples = self.clip_samples(source)
            count = grid_patches(len(samples), window_samples)
            padded = np.zeros(count * size, dtype=np.float32)
            padded[: min(len(samples), len(padded))] = samples[: len(padded)]
            patches = torch.from_numpy(padded).view(count, size).to(device)
            parts = [
                tagger.features(patches[i : i + patches_per_batch]).reshape(-1, tagger.FEATURES)
                for i in range(0, count, patches_per_batch)
            ]
            features = torch.cat(parts).cpu().numpy().astype(np.float16)
            _atomic_write(self.path(source), lambda tmp, f=features: np.save(tmp, f), ".npy")
            if done % 100 == 0:
                rate = done / (time.perf_counter() - started)
                log.info("  %d/%d clips (%.1f clips/s)", done, len(todo), rate)


def attach_pretrained(
    items: list[LoadedExample],
    cache: FeatureCache,
    model: LGFN,
    device: torch.device,
    noise: tuple[float, ...] = (),
) -> None:
    """Give each audio example its cached pretrained-branch features (computing missing ones),
    and with ``noise`` the features of its noisy copies at those SNRs."""
    assert model.pretrained is not None
    branch = model.config.pretrained_audio or "pretrained"
    sources = [i.example.audio for i in items if i.example.audio is not None]
    window = model.config.audio.window_samples
    store = PretrainedFeatureCache(cache, branch)
    store.ensure(sources, model.pretrained, window, device)
    noisy = {snr: PretrainedFeatureCache(cache, branch, snr_db=snr) for snr in noise}
    for copies in noisy.values():
        copies.ensure(sources, model.pretrained, window, device)
    for item in items:
        if item.example.audio is not None:
            item.pretrained = store.load(item.example.audio).astype(np.float32)
            if noisy:
                item.noisy_pretrained = {
                    snr: copies.load(item.example.audio).astype(np.float32)
                    for snr, copies in noisy.items()
                }
