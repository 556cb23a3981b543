"""The words listeners file moods under, mapped to the model's four (docs/user-guide.md).

A hand-set ``mood`` is a free word: ``Melancholic``, ``chill``, ``Sad; Lonely``. ``--learn``
can only learn from the four moods the model knows (Russell's quadrants), so each word is
mapped where its meaning allows and listed otherwise. Words that sit on one axis only
(``energetic``: happy or angry; ``dark``: angry or sad) are left out on purpose: guessing
their quadrant would teach the model the guess. The ``mood_words`` option adds to or
overrides this table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .fields import MOODS

SYNONYMS: dict[str, tuple[str, ...]] = {
    "happy": (
        "cheerful",
        "joyful",
        "joyous",
        "upbeat",
        "uplifting",
        "euphoric",
        "fun",
        "playful",
        "party",
        "exuberant",
        "elated",
        "positive",
    ),
    "angry": (
        "aggressive",
        "furious",
        "rage",
        "hostile",
        "fierce",
        "tense",
        "agitated",
        "frustrated",
        "anxious",
    ),
    "sad": (
        "melancholic",
        "melancholy",
        "depressing",
        "depressed",
        "gloomy",
        "sorrowful",
        "somber",
        "sombre",
        "mournful",
        "heartbroken",
        "lonely",
        "blue",
    ),
    "relaxed": (
        "chill",
        "chilled",
        "calm",
        "peaceful",
        "serene",
        "mellow",
        "relaxing",
        "soothing",
        "tranquil",
        "laid back",
        "dreamy",
        "gentle",
    ),
}
"""The four moods and the words taken for each (the moods' own names map to themselves)."""

SEPARATORS = re.compile(r"[;,/|]")
"""Between the values of a multi-valued mood (``Sad; Lonely``), as taggers write them."""


def normalise(word: str) -> str:
    """Case, spaces, hyphens and underscores do not matter: ``Laid-Back`` is ``laid back``."""
    return " ".join(re.sub(r"[-_]+", " ", word).lower().split())


def word_table(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Normalised word -> mood: the built-in table, then ``extra`` (the ``mood_words``
    option) over it."""
    table = {mood: mood for mood in MOODS}
    for mood, words in SYNONYMS.items():
        table.update(dict.fromkeys(map(normalise, words), mood))
    for word, mood in (extra or {}).items():
        table[normalise(word)] = mood
    return table


def mood_of(text: str, table: Mapping[str, str]) -> str | None:
    """The one mood ``text`` names; None when a word is unknown or the words disagree."""
    parts = [normalise(part) for part in SEPARATORS.split(text)]
    moods = {table.get(part) for part in parts if part}
    if len(moods) != 1 or None in moods:
        return None
    return moods.pop()


@dataclass
class Labels:
    """The moods found on a set of items: which item has which of the four, and the words
    that could not be used (with how many tracks carry each)."""

    moods: list[tuple[object, str]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def add(self, item: object, text: str, table: Mapping[str, str]) -> None:
        mood = mood_of(text, table)
        if mood is None:
            self.skipped[text] = self.skipped.get(text, 0) + 1
        else:
            self.moods.append((item, mood))

    def counts(self) -> dict[str, int]:
        found = dict.fromkeys(MOODS, 0)
        for _, mood in self.moods:
            found[mood] += 1
        return found


def read_labels(items: Iterable[tuple[object, str]], table: Mapping[str, str]) -> Labels:
    labels = Labels()
    for item, text in items:
        labels.add(item, text, table)
    return labels
