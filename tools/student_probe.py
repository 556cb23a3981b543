"""How much valence, arousal and mood do musicnn's features and a student's carry? Linear probes.

    python -m tools.student_probe --data DIR [--student WEIGHTS_DIR ...] [--cache DIR]

A quick stand-in for training a whole fast model per student (25-30 min here): on the
held-out split of ``lgfn train``, every clip with audio is described by the mean and standard
deviation over its 3 s patches of (a) musicnn's 250 cached features and (b) each student's
prediction of them from the clean audio (every grid window, as the fast model sees it); a
standardised logistic regression is fitted on the training part's labels and scored on the
held-out clips. The gap between (a) and (b) is what the student loses of musicnn's
information, per target. A developer measurement (docs/musicnn.md), not a test.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

TARGETS = ("mood", "valence", "arousal")


def pooled(features: np.ndarray) -> np.ndarray:
    x = features.astype(np.float64)
    return np.concatenate([x.mean(0), x.std(0)])


class _StudentRunner:
    """A student's (patches, 250) features of one clip, from every 9 s grid window."""

    def __init__(self, folder: str | None) -> None:
        from lgfn_model.model.components import LogMel
        from lgfn_model.model.config import AudioConfig
        from lgfn_model.pretrained.student import load_student

        self.student = load_student(folder)
        self.log_mel = LogMel(AudioConfig()).eval()
        self.window = AudioConfig().window_samples

    def __call__(self, samples: np.ndarray, patches: int) -> np.ndarray:
        import torch

        from lgfn_model.model.components import PretrainedTagger

        size = PretrainedTagger.PATCH_SAMPLES
        windows = max(1, patches - 2)
        padded = np.zeros(max(len(samples), (windows - 1) * size + self.window), np.float32)
        padded[: len(samples)] = samples
        waves = np.stack([padded[k * size : k * size + self.window] for k in range(windows)])
        with torch.inference_mode():
            out = self.student(self.log_mel(torch.from_numpy(waves)))
        return out.reshape(-1, out.shape[-1]).numpy()


def probe_predictions(train_x, train_y, test_x) -> np.ndarray:
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(
        StandardScaler(),
        LogisticRegressionCV(
            Cs=np.logspace(-4, 1, 11).tolist(), max_iter=5000, cv=4, scoring="accuracy"
        ),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(train_x, train_y)
    return clf.predict(test_x)


def labels(example, target: str):
    value = getattr(example, target)
    if value is None:
        return None
    return int(value) if target == "mood" else int(value > 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument(
        "--student",
        action="append",
        default=[],
        metavar="WEIGHTS_DIR",
        help="a distilled student (repeatable); 'shipped' for the shipped one",
    )
    parser.add_argument("--cache", type=Path, default=None, help="the training feature cache")
    args = parser.parse_args(argv)

    import torch

    from lgfn_model.model.config import AudioConfig
    from lgfn_model.training.cache import FeatureCache
    from lgfn_model.training.datasets import load_examples
    from lgfn_model.training.pretrained_cache import PretrainedFeatureCache
    from lgfn_model.training.splits import make_split

    torch.set_num_threads(2)
    split = make_split("heldout", load_examples(args.data))
    cache = FeatureCache(args.cache, sample_rate=AudioConfig().sample_rate)
    musicnn = PretrainedFeatureCache(cache, "musicnn-msd")
    names = ["musicnn"] + args.student
    runners = {n: _StudentRunner(None if n == "shipped" else n) for n in args.student}

    def describe(examples):
        rows = {n: [] for n in names}
        kept = []
        for e in examples:
            if e.audio is None or not musicnn.path(e.audio).is_file():
                continue
            teacher = musicnn.load(e.audio)
            rows["musicnn"].append(pooled(teacher))
            if runners:
                samples = cache.load_audio(e.audio).astype(np.float32)
                for n, run in runners.items():
                    rows[n].append(pooled(run(samples, len(teacher))))
            kept.append(e)
        return kept, {n: np.stack(v) for n, v in rows.items()}

    train, train_x = describe(split.train)
    test, test_x = describe(split.test)
    print(f"{len(train)} training clips, {len(test)} held-out clips (audio, cached musicnn)")
    datasets = sorted({e.dataset for e in test})
    columns = [f"{t} ({d})" for t in TARGETS for d in ("all", *datasets)]
    print("| features | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for n in names:
        cells = []
        for t in TARGETS:
            tr = [(i, labels(e, t)) for i, e in enumerate(train) if labels(e, t) is not None]
            te = [(i, labels(e, t)) for i, e in enumerate(test) if labels(e, t) is not None]
            predicted = probe_predictions(
                train_x[n][[i for i, _ in tr]],
                np.array([y for _, y in tr]),
                test_x[n][[i for i, _ in te]],
            )
            right = predicted == np.array([y for _, y in te])
            for d in ("all", *datasets):
                keep = np.array([d == "all" or test[i].dataset == d for i, _ in te], dtype=bool)
                cells.append(f"{right[keep].mean():.3f} (n={keep.sum()})" if keep.any() else "-")
        print(f"| {n} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
