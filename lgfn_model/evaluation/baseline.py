"""Classic baseline: hand-made spectral features + logistic regression (audio only).

What a network has to beat. Per clip (the whole cached clip, 16 kHz mono), from a 1024-point
STFT with hop 512 (numpy + torch, no librosa):

- log-mel (64 bands) mean and std; 20 MFCCs mean and std, MFCC-delta std
- spectral centroid, bandwidth, 85 % roll-off, flatness, flux: mean and std
- spectral contrast in 6 octave bands: mean and std
- RMS (dB) mean, std, 10th/90th percentile, share of low-energy frames; zero-crossing rate
- onset strength mean/std, tempo (autocorrelation peak, 40-240 BPM), pulse clarity
- chroma (12 pitch classes) mean and std; best major and minor key-profile correlation

Three scikit-learn logistic regressions on standardised features: mood (4-way, on clips with a
mood label), P(positive valence) and P(high arousal) (each on clips with that sign, so MIREX
clusters 2 and 4 train valence). C is chosen by 5-fold cross-validation on the training split.

    python -m lgfn_model.evaluation.baseline --data DIR [--split heldout|cross-dataset]
        [--cache DIR] [--workers 2] [--low-label 0.3] [--features spectral|lyrics] [--json OUT]

``--features lyrics`` is not the classic baseline but a reference for the lyrics branch: the
same regressions over the mean and max of each song's e5 line embeddings.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lgfn_model.model.config import MOODS
from lgfn_model.training.cache import FeatureCache
from lgfn_model.training.datasets import Example, load_examples
from lgfn_model.training.splits import low_label, make_split

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
N_FFT = 1024
HOP = 512
N_MELS = 64
N_MFCC = 20
FEATURE_VERSION = "1"

# Krumhansl-Kessler key profiles (C major / C minor).
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass(frozen=True)
class _Banks:
    mel: np.ndarray  # (F, n_mels)
    dct: np.ndarray  # (n_mels, n_mfcc)
    chroma: np.ndarray  # (F, 12)
    octaves: list[tuple[int, int]]
    freqs: np.ndarray


_BANKS: _Banks | None = None


def _banks() -> _Banks:
    global _BANKS
    if _BANKS is None:
        import torchaudio

        n_freqs = N_FFT // 2 + 1
        freqs = np.linspace(0, SAMPLE_RATE / 2, n_freqs)
        mel = torchaudio.functional.melscale_fbanks(
            n_freqs, 20.0, SAMPLE_RATE / 2, N_MELS, SAMPLE_RATE, norm="slaney", mel_scale="slaney"
        ).numpy()
        k = np.arange(N_MELS)[:, None]
        n = np.arange(N_MFCC)[None, :]
        dct = np.cos(np.pi / N_MELS * (k + 0.5) * n) * np.sqrt(2.0 / N_MELS)
        dct[:, 0] /= np.sqrt(2.0)
        chroma = np.zeros((n_freqs, 12))
        usable = (freqs >= 55.0) & (freqs <= 4000.0)
        pitch = np.zeros(n_freqs)
        pitch[usable] = 12.0 * np.log2(freqs[usable] / 440.0) + 69.0
        for f in np.nonzero(usable)[0]:
            # Each bin votes for its nearest pitch class, weighted by closeness to the semitone.
            nearest = np.round(pitch[f])
            chroma[f, int(nearest) % 12] = np.cos(np.pi * (pitch[f] - nearest) / 2.0) ** 2
        edges = [0, 200, 400, 800, 1600, 3200, SAMPLE_RATE / 2]
        octaves = [
            (
                int(np.searchsorted(freqs, lo)),
                max(int(np.searchsorted(freqs, hi)), int(np.searchsorted(freqs, lo)) + 2),
            )
            for lo, hi in zip(edges[:-1], edges[1:], strict=True)
        ]
        _BANKS = _Banks(mel, dct, chroma, octaves, freqs)
    return _BANKS


def _stft_power(samples: np.ndarray) -> np.ndarray:
    import torch

    x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    if x.numel() < N_FFT:
        x = torch.nn.functional.pad(x, (0, N_FFT - x.numel()))
    spec = torch.stft(
        x, N_FFT, HOP, window=torch.hann_window(N_FFT), center=True, return_complex=True
    )
    return (spec.abs() ** 2).numpy().astype(np.float64)  # (F, T)


def _stats(values: np.ndarray, axis: int = -1) -> list[float]:
    return [*np.atleast_1d(values.mean(axis=axis)), *np.atleast_1d(values.std(axis=axis))]


def spectral_features(samples: np.ndarray) -> np.ndarray:
    """Fixed-length feature vector of one mono 16 kHz clip (see the module docstring)."""
    banks = _banks()
    power = _stft_power(samples)  # (F, T)
    magnitude = np.sqrt(power)
    eps = 1e-10
    out: list[float] = []

    log_mel = 10.0 * np.log10(banks.mel.T @ power + eps)  # (n_mels, T)
    out += _stats(log_mel, axis=1)
    mfcc = banks.dct.T @ log_mel  # (n_mfcc, T)
    out += _stats(mfcc, axis=1)
    out += list(np.diff(mfcc, axis=1).std(axis=1)) if mfcc.shape[1] > 1 else [0.0] * N_MFCC

    total = magnitude.sum(axis=0) + eps
    freqs = banks.freqs[:, None]
    centroid = (freqs * magnitude).sum(axis=0) / total
    bandwidth = np.sqrt(((freqs - centroid) ** 2 * magnitude).sum(axis=0) / total)
    cumulative = np.cumsum(power, axis=0)
    rolloff = banks.freqs[np.argmax(cumulative >= 0.85 * cumulative[-1:], axis=0)]
    flatness = np.exp(np.log(power + eps).mean(axis=0)) / (power.mean(axis=0) + eps)
    normalised = magnitude / total
    flux = (
        np.sqrt((np.diff(normalised, axis=1) ** 2).sum(axis=0))
        if power.shape[1] > 1
        else np.zeros(1)
    )
    for values, scale in (
        (centroid, 1e-3),
        (bandwidth, 1e-3),
        (rolloff, 1e-3),
        (flatness, 1.0),
        (flux, 1.0),
    ):
        out += _stats(values * scale)

    contrast = []
    for lo, hi in banks.octaves:
        band = np.sort(np.log10(power[lo:hi] + eps), axis=0)
        k = max(1, int(round(0.2 * band.shape[0])))
        contrast.append(band[-k:].mean(axis=0) - band[:k].mean(axis=0))
    out += _stats(np.array(contrast), axis=1)

    rms_db = 10.0 * np.log10(power.mean(axis=0) + eps)
    out += [
        rms_db.mean(),
        rms_db.std(),
        np.percentile(rms_db, 10),
        np.percentile(rms_db, 90),
        float(np.mean(rms_db < rms_db.mean())),
    ]
    frames = (
        samples[: len(samples) // HOP * HOP].reshape(-1, HOP)
        if len(samples) >= HOP
        else samples[None, :]
    )
    zcr = np.mean(np.abs(np.diff(np.signbit(frames).astype(np.int8), axis=1)), axis=1)
    out += _stats(zcr)

    onset = (
        np.maximum(np.diff(log_mel, axis=1), 0.0).mean(axis=0)
        if log_mel.shape[1] > 1
        else np.zeros(2)
    )
    out += _stats(onset)
    out += _tempo(onset)

    chroma = banks.chroma.T @ power  # (12, T)
    chroma = chroma / (chroma.sum(axis=0, keepdims=True) + eps)
    out += _stats(chroma, axis=1)
    mean_chroma = chroma.mean(axis=1)
    out += [_best_key(mean_chroma, _MAJOR), _best_key(mean_chroma, _MINOR)]
    vector = np.asarray(out, dtype=np.float64)
    return np.nan_to_num(vector, nan=0.0, posinf=0.0, neginf=0.0)


def _tempo(onset: np.ndarray) -> list[float]:
    frame_rate = SAMPLE_RATE / HOP
    x = onset - onset.mean()
    lo, hi = int(frame_rate * 60 / 240), int(frame_rate * 60 / 40)
    if x.size <= hi + 1 or not np.any(x):
        return [0.0, 0.0]
    ac = np.correlate(x, x, mode="full")[x.size - 1 :]
    ac = ac / (ac[0] + 1e-10)
    lag = lo + int(np.argmax(ac[lo : hi + 1]))
    return [60.0 * frame_rate / lag / 200.0, float(ac[lag])]


def _best_key(chroma: np.ndarray, profile: np.ndarray) -> float:
    if not np.any(chroma):
        return 0.0
    return float(max(np.corrcoef(chroma, np.roll(profile, shift))[0, 1] for shift in range(12)))


def feature_matrix(examples: Sequence[Example], cache: FeatureCache) -> np.ndarray:
    """Spectral features of each example's audio; stored beside the decoded audio in the cache."""
    rows = []
    for i, example in enumerate(examples):
        audio_file = cache.audio_file(example.audio)
        stored = (
            cache.root / f"spectral-v{FEATURE_VERSION}" / audio_file.parent.name / audio_file.name
        )
        if stored.is_file():
            rows.append(np.load(stored, allow_pickle=False))
        else:
            rows.append(spectral_features(cache.load_audio(example.audio)))
            stored.parent.mkdir(parents=True, exist_ok=True)
            np.save(stored, rows[-1], allow_pickle=False)
        if (i + 1) % 200 == 0:
            log.info("features: %d/%d", i + 1, len(examples))
    return np.stack(rows)


def lyrics_matrix(
    examples: Sequence[Example], cache: FeatureCache, encoder: str = "multilingual-e5-small"
) -> np.ndarray:
    """Mean and max of each example's lyric line embeddings (the lyrics-only probe)."""
    rows = []
    for example in examples:
        lines = cache.load_lyrics(example.lyrics, encoder).embeddings
        if len(lines) == 0:
            rows.append(np.zeros(2 * lines.shape[1]))
        else:
            rows.append(np.r_[lines.mean(axis=0), lines.max(axis=0)])
    return np.stack(rows)


# ----------------------------------------------------------------------------------- the model


class SpectralBaseline:
    """Three logistic regressions over :func:`spectral_features`: fit, then predict."""

    def __init__(
        self, c_grid: Sequence[float] = (0.01, 0.03, 0.1, 0.3, 1.0), seed: int = 0
    ) -> None:
        self.c_grid = tuple(c_grid)
        self.seed = seed
        self.models: dict[str, Any] = {}
        self.chosen_c: dict[str, float] = {}

    def _fit_one(self, name: str, x: np.ndarray, y: np.ndarray) -> None:
        try:
            import sklearn  # noqa: F401 - only the baseline needs it: an extra, not a dependency
        except ImportError:
            raise SystemExit(
                "the baseline needs scikit-learn: pip install 'beets-lgfn[research]'"
            ) from None
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import GridSearchCV, StratifiedKFold
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if len(np.unique(y)) < 2:
            log.warning("baseline %s: one class only in training data, head skipped", name)
            return
        pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
        folds = min(5, int(np.bincount(y).min()))
        if folds >= 2 and len(self.c_grid) > 1:
            search = GridSearchCV(
                pipeline,
                {"logisticregression__C": list(self.c_grid)},
                cv=StratifiedKFold(folds, shuffle=True, random_state=self.seed),
                scoring="accuracy",
                n_jobs=1,
            )
            search.fit(x, y)
            self.models[name] = search.best_estimator_
            self.chosen_c[name] = float(search.best_params_["logisticregression__C"])
        else:
            pipeline.set_params(logisticregression__C=self.c_grid[len(self.c_grid) // 2])
            self.models[name] = pipeline.fit(x, y)

    def fit(self, x: np.ndarray, examples: Sequence[Example]) -> SpectralBaseline:
        mood = np.array([-1 if e.mood is None else e.mood for e in examples])
        valence = np.array([0 if not e.valence else np.sign(e.valence) for e in examples])
        arousal = np.array([0 if not e.arousal else np.sign(e.arousal) for e in examples])
        keep = mood >= 0
        self._fit_one("mood", x[keep], mood[keep])
        for name, signs in (("valence", valence), ("arousal", arousal)):
            keep = signs != 0
            self._fit_one(name, x[keep], (signs[keep] > 0).astype(np.int64))
        return self

    def predict(
        self, x: np.ndarray
    ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        """(mood probabilities (n, 4), P(positive valence), P(high arousal)); None: head skipped."""
        mood = None
        if "mood" in self.models:
            model = self.models["mood"]
            mood = np.zeros((x.shape[0], len(MOODS)))
            mood[:, model.classes_] = model.predict_proba(x)
        out = [mood]
        for name in ("valence", "arousal"):
            model = self.models.get(name)
            out.append(
                None if model is None else model.predict_proba(x)[:, list(model.classes_).index(1)]
            )
        return out[0], out[1], out[2]


# ------------------------------------------------------------------------------------- command


def run_baseline(
    data: Path,
    cache_dir: Path | None = None,
    split_name: str = "heldout",
    workers: int = 2,
    low_label_fraction: float | None = None,
    seed: int = 0,
    features: str = "spectral",
) -> tuple[dict[str, dict[str, Any]], str]:
    """Fit on the split's training examples, measure on its test examples.

    ``features="spectral"`` uses clips with audio; ``"lyrics"`` (a lyrics-only probe: mean and
    max of the e5 line embeddings) uses examples with lyrics.
    """
    from lgfn_model.evaluation.metrics import evaluate_examples

    if features not in ("spectral", "lyrics"):
        raise ValueError(f"unknown features {features!r}")
    examples = load_examples(data)
    split = make_split(split_name, examples)
    usable = (lambda e: e.has_audio) if features == "spectral" else (lambda e: e.has_lyrics)
    train = [e for e in split.train if usable(e)]
    test = [e for e in split.test if usable(e)]
    if low_label_fraction is not None:
        train = [e for e in low_label(train, low_label_fraction, seed) if e.labelled]
    cache = FeatureCache(cache_dir, SAMPLE_RATE)
    started = time.perf_counter()
    if features == "spectral":
        errors = cache.ensure_audio([e.audio for e in train + test], workers=workers)
        train = [e for e in train if e.audio not in errors]
        test = [e for e in test if e.audio not in errors]
        x_train, x_test = feature_matrix(train, cache), feature_matrix(test, cache)
    else:
        encoder = "multilingual-e5-small"
        errors = cache.ensure_lyrics([e.lyrics for e in train + test], encoder)
        train = [e for e in train if e.lyrics not in errors]
        test = [e for e in test if e.lyrics not in errors]
        x_train, x_test = lyrics_matrix(train, cache, encoder), lyrics_matrix(test, cache, encoder)
    log.info(
        "features of %d examples in %.1f s", len(train) + len(test), time.perf_counter() - started
    )
    model = SpectralBaseline(seed=seed).fit(x_train, train)
    mood, valence, arousal = model.predict(x_test)
    has_lyrics = np.array([e.has_lyrics for e in test])
    datasets = sorted({e.dataset for e in test})
    subsets = {
        "all": np.ones(len(test), dtype=bool),
        "with lyrics": has_lyrics,
        "without lyrics": ~has_lyrics,
    }
    subsets.update({f"dataset {d}": np.array([e.dataset == d for e in test]) for d in datasets})
    results = evaluate_examples(test, mood, valence, arousal, subsets)
    what = "spectral baseline" if features == "spectral" else "lyrics-embedding probe"
    note = (
        f"{what} ({x_train.shape[1]} features, logistic regression, C={model.chosen_c}); "
        f"split {split_name}: {len(train)} train / {len(test)} test examples"
        + (
            f"; labels kept on {low_label_fraction:.0%} of training examples"
            if low_label_fraction
            else ""
        )
    )
    return results, note


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lgfn_model.evaluation.baseline", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--data", required=True, type=Path, help="data root (4q/, mirex/, nju/) or manifest CSV"
    )
    parser.add_argument("--cache", type=Path, default=None, help="feature cache folder")
    parser.add_argument("--split", default="heldout", choices=("heldout", "cross-dataset"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--low-label", type=float, default=None, metavar="FRACTION")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--features",
        default="spectral",
        choices=("spectral", "lyrics"),
        help="spectral: the classic audio baseline; lyrics: a lyrics-embedding probe",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import torch

    torch.set_num_threads(1)
    from lgfn_model.evaluation.metrics import format_report, to_json

    results, note = run_baseline(
        args.data, args.cache, args.split, args.workers, args.low_label, args.seed, args.features
    )
    sys.stdout.write(format_report(results, note))
    if args.json:
        args.json.write_text(to_json({"note": note, "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
