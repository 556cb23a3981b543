"""Mood-matched lyrics for audio clips that have none (`--pair-lyrics`).

Only the MIREX-like songs pair audio with lyrics; 4Q has audio only, NJU and MoodyLyrics4Q have
lyrics only. Trained without MIREX-like, the model never meets a clip with words and fails on
real songs (docs/cross-validation.md, leave MIREX-like out); with it, 458 clips are all it
learns the fusion of sound and words from. Pairing gives a clip without lyrics, now and then,
the lyrics of a lyrics-only training example of the same mood, so the gate and the alignment
meet "audio + words" on every set with audio. The borrowed lines are untimed, as the MIREX-like
songs' plain lyrics are (the clip is a 30 s excerpt; a donor's LRC times would be another
song's), and the donor's whole-text vector comes along for a ``song_text`` model.

The pool holds training examples only, so a fold's test lyrics never reach its training.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from lgfn_model.training.cache import LyricFeatures
from lgfn_model.training.datasets import Example

log = logging.getLogger(__name__)


class Item(Protocol):
    """What pairing reads of a training item (``batches.LoadedExample``)."""

    example: Example
    samples: np.ndarray | None
    lyrics: LyricFeatures | None


def _has_lines(lyrics: LyricFeatures | None) -> bool:
    return lyrics is not None and len(lyrics) > 0


def untimed(lyrics: LyricFeatures) -> LyricFeatures:
    """The same lines with no start times (plain lyrics)."""
    starts = np.full(len(lyrics), np.nan, dtype=np.float32)
    return LyricFeatures(lyrics.embeddings, starts, lyrics.song)


@dataclass
class LyricDonors:
    """Untimed lyrics of the lyrics-only training examples, by mood index."""

    by_mood: dict[int, list[LyricFeatures]]

    @classmethod
    def from_items(cls, items: Iterable[Item]) -> LyricDonors:
        by_mood: dict[int, list[LyricFeatures]] = {}
        for item in items:
            mood = item.example.mood
            if item.samples is None and mood is not None and _has_lines(item.lyrics):
                by_mood.setdefault(mood, []).append(untimed(item.lyrics))  # type: ignore[arg-type]
        return cls(by_mood)

    def __len__(self) -> int:
        return sum(len(pool) for pool in self.by_mood.values())

    def counts(self) -> dict[int, int]:
        return {mood: len(pool) for mood, pool in sorted(self.by_mood.items())}

    def wants(self, item: Item) -> bool:
        """Whether ``item`` can take borrowed lyrics: a clip with a mood that donors share
        and no lines of its own."""
        mood = item.example.mood
        return (
            item.samples is not None
            and mood is not None
            and bool(self.by_mood.get(mood))
            and not _has_lines(item.lyrics)
        )

    def draw(self, mood: int, rng: np.random.Generator) -> LyricFeatures:
        pool = self.by_mood[mood]
        return pool[int(rng.integers(len(pool)))]


def lyric_donors(items: list[Item], chance: float) -> LyricDonors | None:
    """The pool of ``--pair-lyrics CHANCE`` over the training ``items``, or None when off."""
    if not 0.0 <= chance <= 1.0:
        raise ValueError(f"--pair-lyrics {chance:g}: a chance must be between 0 and 1")
    if chance == 0:
        return None
    donors = LyricDonors.from_items(items)
    if not donors:
        raise ValueError(
            f"--pair-lyrics {chance:g}: no lyrics-only training example with a mood to borrow "
            "from (NJU or MoodyLyrics4Q)"
        )
    takers = sum(donors.wants(i) for i in items)
    log.info(
        "pairing lyrics: %d clips without words may borrow from %d lyrics (by mood: %s)",
        takers,
        len(donors),
        donors.counts(),
    )
    return donors
