"""How much mood does musicnn's MSD embedding carry? A linear probe on the 4Q dataset.

    python -m tools.musicnn_4q_probe --data DIR [--cache FILE.npz]

``DIR`` holds ``labels.csv`` (columns ``song``, ``quadrant`` Q1..Q4, ``path`` relative to DIR).
Each clip is decoded to 16 kHz mono, cut into 3 s patches (no overlap), embedded with the
ported MSD tagger; per clip the patch embeddings are mean+std pooled. Then 5-fold stratified
CV of a standardised logistic regression on: the 4 quadrants, valence sign (Q1, Q4 positive)
and arousal sign (Q1, Q2 high). Embeddings are cached in ``--cache`` (outside the repo).
A developer measurement (docs/musicnn.md), not a test; one thread, CPU.
"""

from __future__ import annotations

import argparse
import csv
import time
import warnings
from pathlib import Path

import numpy as np

FEATURES = ("penultimate", "max_pool", "tags")


def embed_all(data: Path, rows: list[dict[str, str]]) -> dict[str, np.ndarray]:
    import torch

    from lgfn_model.data.audio import decode_audio
    from lgfn_model.pretrained.musicnn import load_musicnn_msd

    torch.set_num_threads(1)
    model = load_musicnn_msd()
    pooled: dict[str, list[np.ndarray]] = {name: [] for name in FEATURES}
    start = time.perf_counter()
    for i, row in enumerate(rows):
        audio = decode_audio(data / row["path"], 16000)
        out = model.embed_waveform(audio.samples)
        for name in FEATURES:
            x = out[name].numpy().astype(np.float64)
            pooled[name].append(np.concatenate([x.mean(0), x.std(0)]))
        if (i + 1) % 50 == 0:
            rate = (time.perf_counter() - start) / (i + 1)
            print(f"{i + 1}/{len(rows)} clips, {rate:.2f} s/clip", flush=True)
    return {name: np.stack(v) for name, v in pooled.items()}


def probe(x: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(
        StandardScaler(),
        LogisticRegressionCV(
            Cs=np.logspace(-4, 1, 11).tolist(), max_iter=5000, cv=4, scoring="accuracy"
        ),
    )
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    scores = cross_val_score(clf, x, y, cv=folds)
    return float(scores.mean()), float(scores.std())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="4Q folder with labels.csv")
    parser.add_argument("--cache", type=Path, help="npz of pooled embeddings (read or written)")
    parser.add_argument("--limit", type=int, help="only the first N clips (a quick look)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)  # sklearn API transitions

    with open(args.data / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if args.limit:
        rows = rows[: args.limit]
    songs = np.array([r["song"] for r in rows])
    if args.cache and args.cache.exists():
        cached = np.load(args.cache)
        if list(cached["songs"]) != list(songs):
            raise SystemExit(f"{args.cache} holds other clips")
        feats = {name: cached[name] for name in FEATURES}
    else:
        feats = embed_all(args.data, rows)
        if args.cache:
            np.savez_compressed(args.cache, songs=songs, **feats)

    quadrant = np.array([r["quadrant"] for r in rows])
    tasks = {
        "quadrant (4-way)": quadrant,
        "valence sign": np.isin(quadrant, ["Q1", "Q4"]).astype(int),
        "arousal sign": np.isin(quadrant, ["Q1", "Q2"]).astype(int),
    }
    print(f"{len(rows)} clips; 5-fold stratified CV, logistic regression (mean +- std over folds)")
    for name in FEATURES:
        x = feats[name]
        cells = [f"{task}: {m:.3f} +- {s:.3f}" for task, (m, s) in
                 ((t, probe(x, y)) for t, y in tasks.items())]  # fmt: skip
        print(f"{name} mean+std ({x.shape[1]}-d): " + "; ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
