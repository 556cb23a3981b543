"""``beet emotion --learn`` end to end, on a real beets library built from labelled clips.

    python -m tools.learn_in_a_library --data ../shared/data --checkpoint CHECKPOINT \\
        [--library mirex] [--tracks 150] [--labels 50] [--seed 0] [--keep DIR]

Builds a beets library in a temporary folder (or ``--keep DIR``) from ``--tracks`` clips of
one dataset, drawn at random (MIREX-like clips keep their lyrics in the ``lyrics`` field),
analyses it with ``beet emotion``, sets the true mood on ``--labels`` of them as a listener
would (``beet modify ID mood=M emotion_mood_by_hand=true``: confirmed or corrected), runs
``beet emotion --learn`` and scores the mood of every other track against its label, before
and after. The two ``beet`` runs are real subprocesses with their own configuration, timed.
This is the plugin path of ``tools.personal_moods`` (which simulates many listeners on cached
embeddings); a checkpoint that never heard the library (``lgfn train --split cross-dataset``
for MIREX-like) measures what a user's own music would see.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

MOODS = ("happy", "angry", "sad", "relaxed")


def build_library(root: Path, examples: list[Any], checkpoint: str) -> Path:
    from beets.library import Item, Library

    music = root / "music"
    music.mkdir(parents=True)
    config = root / "config.yaml"
    config.write_text(
        json.dumps(
            {
                "library": str(root / "library.db"),
                "directory": str(music),
                "plugins": ["emotion"],
                "import": {"write": False},
                "emotion": {
                    "checkpoint": checkpoint,
                    "lyrics_sources": ["beets"],
                    "progress": False,
                },
            }
        )
    )
    library = Library(str(root / "library.db"), str(music))
    for example in examples:
        target = music / f"{example.id}{example.audio.suffix}"
        shutil.copyfile(example.audio, target)
        item = Item.from_path(str(target))
        item.title = example.title or example.id
        item.artist = example.artist
        if example.lyrics is not None:
            item.lyrics = example.lyrics.read_text(encoding="utf-8", errors="replace")
        item["clip_id"] = example.id
        library.add(item)
    library._close()
    return config


def beet(config: Path, *args: str) -> tuple[str, float]:
    environment = {**os.environ, "BEETSDIR": str(config.parent)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "beets", "-c", str(config), *args],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"beet {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout, seconds


def moods(root: Path) -> dict[str, str]:
    from beets.library import Library

    library = Library(str(root / "library.db"), str(root / "music"))
    found = {str(item["clip_id"]): str(item.get("mood", "")) for item in library.items()}
    library._close()
    return found


def label(config: Path, chosen: dict[str, str]) -> None:
    """The listener's hand-set moods, one ``beet modify`` per mood (confirmed or corrected)."""
    for mood in MOODS:
        clips = sorted(clip for clip, m in chosen.items() if m == mood)
        if clips:
            query = f"clip_id::^({'|'.join(clips)})$"
            beet(config, "modify", "-y", query, f"mood={mood}", "emotion_mood_by_hand=true")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.learn_in_a_library", description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--library", default="mirex")
    parser.add_argument("--tracks", type=int, default=150)
    parser.add_argument("--labels", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", help="build the library here (kept) instead of a temp folder")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    from tools.personal_moods import library_examples

    examples = library_examples(Path(args.data), args.library)
    rng = np.random.default_rng(args.seed)
    picked = [examples[i] for i in rng.choice(len(examples), size=args.tracks, replace=False)]
    truth = {e.id: MOODS[e.mood] for e in picked}
    labelled = {e.id: truth[e.id] for e in picked[: args.labels]}
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="learn-library-"))
    config = build_library(root, picked, str(Path(args.checkpoint).expanduser().resolve()))
    analysed, analyse_seconds = beet(config, "emotion", "-W")
    before = moods(root)
    label(config, labelled)
    learned, learn_seconds = beet(config, "emotion", "--learn", "-W")
    after = moods(root)
    rest = [clip for clip in truth if clip not in labelled]
    report = {
        "library": args.library,
        "tracks": args.tracks,
        "labels": args.labels,
        "seed": args.seed,
        "analyse_seconds": analyse_seconds,
        "learn_seconds": learn_seconds,
        "rest": len(rest),
        "accuracy_before": float(np.mean([before[c] == truth[c] for c in rest])),
        "accuracy_after": float(np.mean([after[c] == truth[c] for c in rest])),
        "labels_kept": all(after[c] == m for c, m in labelled.items()),
    }
    print(analysed.strip().splitlines()[0])
    print(learned.strip())
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
