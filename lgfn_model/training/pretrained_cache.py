"""Cache of the frozen pretrained branch's features, per 3 s patch of each training clip.

The musicnn tagger is frozen, and costs more than the rest of the model, so training computes
its features once per clip (patches on a fixed 3 s grid) and crops windows on that grid.
Stored next to the audio cache as ``<branch>-v1/<k[:2]>/<k>.npy`` (float16, (patches, F)):
the branch's name (``pretrained_audio``) is both the folder and part of the key, so each branch
has its own features (F: 250 for "musicnn-msd", 200 for "musicnn-jamendo").
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from lgfn_model.model.components import PretrainedTagger
from lgfn_model.training.cache import FeatureCache, _atomic_write, _digest

log = logging.getLogger(__name__)
VERSION = "1"


def grid_patches(n_samples: int, window_samples: int) -> int:
    """Patches cached for a clip: its whole 3 s grid, at least one (zero-padded) window."""
    size = PretrainedTagger.PATCH_SAMPLES
    return max(window_samples // size, -(-n_samples // size))


class PretrainedFeatureCache:
    def __init__(self, audio_cache: FeatureCache, branch: str) -> None:
        self.audio_cache = audio_cache
        self.branch = branch

    def path(self, source: str | Path) -> Path:
        key = _digest(VERSION, self.branch, self.audio_cache.audio_file(source).name)
        return self.audio_cache.root / f"{self.branch}-v{VERSION}" / key[:2] / f"{key}.npy"

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
        log.info(
            "computing %s features for %d clips (cached for next time)", self.branch, len(todo)
        )
        tagger = tagger.to(device).eval()
        size = PretrainedTagger.PATCH_SAMPLES
        started = time.perf_counter()
        for done, source in enumerate(todo, 1):
            samples = self.audio_cache.load_audio(source)
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
