"""How much mood the lyrics encoder's line vectors hold: a linear probe, cross-validated.

Each lyrics file becomes the mean (and optionally the spread) of its cached line embeddings
(the encoder LGFN reads, ``multilingual-e5-small``); a logistic regression per label (the four
moods, the sign of valence, the sign of arousal) is trained on the lyrics of K-1 folds and
tested on the held-out fold, over the very folds of ``lgfn crossval`` (``kfold_splits``, all
development data: NJU, MoodyLyrics4Q and the MIREX-like clips' lyrics). Figures per dataset as
mean and sample sd over folds, the labels mapped as ``lgfn evaluate`` maps them (MIREX-like
clusters 1/5/3 as happy/angry/sad, the mood the argmax over all four).

What it is for: the full model's lyrics-only figures by cross-validation (NJU 0.485,
MoodyLyrics4Q 0.552 mood accuracy, docs/cross-validation.md) against what a frozen encoder plus
a linear layer reaches on the same folds. If the probe is clearly ahead, the model's lyrics path
wastes what the encoder knows.

    python -m tools.lyrics_probe --data ../shared/data            # cache filled by lgfn crossval

Needs scikit-learn (the `research` extra). Reads only cached embeddings: run `lgfn crossval`
(or `lgfn train`) first so the lyrics are embedded, or pass --embed to embed what is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from lgfn_model.model.config import LGFNConfig
from lgfn_model.training.cache import FeatureCache
from lgfn_model.training.crossval import development_examples
from lgfn_model.training.datasets import Example
from lgfn_model.training.splits import kfold_splits
from tools.stack_features import lyrics_whole

LYRIC_SETS = ("mirex", "nju", "moodylyrics")


def features(
    examples: list[Example],
    cache: FeatureCache,
    encoder: str,
    spread: bool,
    lexicon: str,
    text: str = "lines",
) -> dict:
    """Per lyrics file: the encoder's mean line vector (and spread), and/or the VADER lexicon's
    summary (``lexicon``: "off", "with" the vectors, "only"). ``text``: "lines" (the mean of
    the line vectors), "whole" (one vector of the whole text, read by the encoder in context)
    or "both" side by side."""
    scorer = vader_scorer() if lexicon != "off" else None
    whole = lyrics_whole(examples, cache) if text != "lines" else {}
    out = {}
    for example in examples:
        if example.lyrics is None:
            continue
        lines = cache.load_lyrics(example.lyrics, encoder).embeddings
        if len(lines) == 0:
            continue
        parts = []
        if lexicon != "only":
            if text != "whole":
                parts.append(lines.mean(axis=0))
            if text != "lines":
                parts.append(whole[example.id])
            if spread:
                parts.append(lines.std(axis=0))
        if scorer is not None:
            parts.append(scorer(example.lyrics))
        out[example.id] = np.concatenate(parts)
    return out


def vader_scorer():  # type: ignore[no-untyped-def]
    """A file's VADER summary: mean neg/neu/pos/compound over its lines, the share of lines
    clearly positive and clearly negative (|compound| >= 0.05), and the whole text's compound.
    Needs ``vadersentiment`` (MIT; English only: other languages score neutral)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from lgfn_model.data.lyrics import read_lyrics_file

    analyser = SentimentIntensityAnalyzer()

    def score(path: Path) -> np.ndarray:
        texts = [line.text for line in read_lyrics_file(str(path)).lines if line.text.strip()]
        rows = np.array(
            [
                [s["neg"], s["neu"], s["pos"], s["compound"]]
                for s in map(analyser.polarity_scores, texts)
            ]
            or [[0.0, 1.0, 0.0, 0.0]]
        )
        compound = rows[:, 3]
        whole = analyser.polarity_scores(" . ".join(texts))["compound"]
        return np.array(
            [*rows.mean(axis=0), (compound >= 0.05).mean(), (compound <= -0.05).mean(), whole]
        )

    return score


def fit_predict(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, strength: float
) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x_train)
    model = LogisticRegression(C=strength, max_iter=2000)
    model.fit(scaler.transform(x_train), y_train)
    probs = np.zeros((len(x_test), int(y_train.max()) + 1))
    probs[:, model.classes_] = model.predict_proba(scaler.transform(x_test))
    return probs


def run(
    data: Path,
    folds: int,
    strengths: list[float],
    spread: bool,
    embed: bool,
    lexicon: str = "off",
    text: str = "lines",
) -> dict:
    examples = development_examples(data)
    encoder = LGFNConfig().text_encoder
    cache = FeatureCache(None, sample_rate=LGFNConfig().audio.sample_rate)
    lyric_files = [e.lyrics for e in examples if e.lyrics is not None]
    missing = [p for p in lyric_files if not cache.lyrics_file(p, encoder).is_file()]
    if missing and not embed:
        raise SystemExit(f"{len(missing)} lyrics files are not embedded yet; pass --embed")
    if missing:
        cache.ensure_lyrics(missing, encoder)
    vectors = features(examples, cache, encoder, spread, lexicon, text)
    splits = kfold_splits(examples, folds)
    report: dict = {
        "folds": folds,
        "spread": spread,
        "lexicon": lexicon,
        "text": text,
        "results": {},
    }
    for strength in strengths:
        per_set: dict[str, dict[str, list[float]]] = {}
        for split in splits:
            train = [e for e in split.train if e.id in vectors]
            test = [e for e in split.test if e.id in vectors]
            for label in ("mood", "valence", "arousal"):
                known = [e for e in train if getattr(e, label) is not None]
                y = np.array(
                    [e.mood if label == "mood" else int(getattr(e, label) > 0) for e in known]
                )
                x = np.stack([vectors[e.id] for e in known])
                x_test = np.stack([vectors[e.id] for e in test])
                probs = fit_predict(x, y, x_test, strength)
                for name in LYRIC_SETS:
                    rows = [
                        (i, e)
                        for i, e in enumerate(test)
                        if e.dataset == name and getattr(e, label) is not None
                    ]
                    if not rows:
                        continue
                    index = np.array([i for i, _ in rows])
                    if label == "mood":
                        truth = np.array([e.mood for _, e in rows])
                        right = probs[index].argmax(axis=1) == truth
                    else:
                        truth = np.array([getattr(e, label) > 0 for _, e in rows])
                        right = (probs[index, 1] >= 0.5) == truth
                    per_set.setdefault(name, {}).setdefault(label, []).append(float(right.mean()))
        report["results"][str(strength)] = per_set
    return report


def format_report(report: dict) -> str:
    lines = [f"lyrics probe, {report['folds']} folds (mean ± sd over folds)"]
    for strength, per_set in report["results"].items():
        lines.append(f"C = {strength}")
        for name, labels in per_set.items():
            cells = [
                f"{label} {np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"
                for label, values in labels.items()
            ]
            lines.append(f"  {name:<12} " + "   ".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--strengths", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    parser.add_argument("--spread", action="store_true", help="also the lines' sd per dimension")
    parser.add_argument("--embed", action="store_true", help="embed lyrics not cached yet")
    parser.add_argument(
        "--lexicon",
        choices=("off", "with", "only"),
        default="off",
        help="VADER sentiment summary of each file: with the line vectors, or alone",
    )
    parser.add_argument(
        "--text",
        choices=("lines", "whole", "both"),
        default="lines",
        help="the mean of the line vectors, one vector of the whole text, or both",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    report = run(
        args.data, args.folds, args.strengths, args.spread, args.embed, args.lexicon, args.text
    )
    print(format_report(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
