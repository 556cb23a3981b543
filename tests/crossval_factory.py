"""A tiny development data root (4Q, MIREX-like, NJU, MoodyLyrics4Q) and a tiny recipe, for
the cross-validation tests."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

from audio_factory import make_audio_file

from lgfn_model.testing import tiny_config
from lgfn_model.training.train import TrainSettings

KINDS = {"happy": "chord", "angry": "noise", "sad": "tone", "relaxed": "silence"}
QUADRANT = {"happy": "Q1", "angry": "Q2", "sad": "Q3", "relaxed": "Q4"}


def make_crossval_data(root: Path) -> Path:
    """4Q (2 clips per quadrant), MIREX-like (clusters 1/3/5/2), NJU and MoodyLyrics4Q."""
    rows = []
    for mood, kind in KINDS.items():
        for n in range(2):
            make_audio_file(root / "4q" / f"{mood}{n}.flac", seconds=2.5, kind=kind, seed=n)
            rows.append([f"S{mood}{n}", QUADRANT[mood], f"A {mood}{n}", f"T {mood}{n}", "", "",
                         f"{mood}{n}.flac"])  # fmt: skip
    _csv(root / "4q/labels.csv", ["song", "quadrant", "artist", "title", "moods", "genres",
                                  "path"], rows)  # fmt: skip
    rows = []
    for i, (cluster, kind) in enumerate([(1, "chord"), (3, "tone"), (5, "noise"), (2, "chord")]):
        for n in range(2):
            make_audio_file(root / "mirex" / f"m{i}{n}.flac", seconds=2.5, kind=kind, seed=9 + n)
            lyrics = ""
            if n == 0:
                (root / "mirex" / f"m{i}{n}.txt").write_text("some words\nmore words\n")
                lyrics = f"m{i}{n}.txt"
            rows.append([f"{i}{n}", str(cluster), "", f"M {i}{n}", f"X {i}{n}", "", "",
                         f"m{i}{n}.flac", lyrics])  # fmt: skip
    _csv(root / "mirex/labels.csv", ["id", "cluster", "mood", "artist", "title", "album", "year",
                                     "audio", "lyrics"], rows)  # fmt: skip
    rows = []
    for mood in KINDS:
        for n in range(2):
            (root / "nju" / f"{mood}{n}.lrc").parent.mkdir(exist_ok=True)
            (root / "nju" / f"{mood}{n}.lrc").write_text(f"[00:01.00]{mood} {n}\n[00:02.00]la\n")
            rows.append([f"{mood}{n}.lrc", mood, "train", f"N {mood}{n}", f"Singer {mood}{n}"])
    _csv(root / "nju/labels.csv", ["file", "mood", "split", "title", "artist"], rows)
    write_moodylyrics(root, [m for m in KINDS for _ in range(2)])
    return root


def write_moodylyrics(root: Path, moods: list[str]) -> None:
    folder = root / "moodylyrics"
    (folder / "lyrics").mkdir(parents=True)
    with open(folder / "labels.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "mood", "artist", "title", "lyrics"])
        for i, mood in enumerate(moods):
            (folder / "lyrics" / f"ML{i}.txt").write_text(f"a {mood} line\nanother {mood} one\n")
            writer.writerow([f"ML{i}", mood, f"Artist {i}", f"Title {i}", f"lyrics/ML{i}.txt"])


def _csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def tiny_recipe(root: Path, cache: Path) -> TrainSettings:
    tiny = dataclasses.asdict(tiny_config())
    tiny.pop("version")
    tiny["audio"] = tiny_config().audio
    return TrainSettings(
        data=root,
        out=root / "unused",
        cache=cache,
        epochs=1,
        batch_size=8,
        workers=0,
        device="cpu",
        config_overrides=tiny,
    )
