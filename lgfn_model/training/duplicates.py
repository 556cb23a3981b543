"""Duplicates: the same song in several datasets (or twice in one), found by normalised title
and shared artist words, so a song never sits on both sides of a split."""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence

from lgfn_model.training.datasets import Example

_BRACKETS = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_STOP = {
    "the",
    "and",
    "his",
    "her",
    "band",
    "orchestra",
    "feat",
    "featuring",
    "with",
    "des",
    "los",
    "las",
}


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def normalise_title(title: str) -> str:
    """Title key: accents, case, punctuation and bracketed parts ("(Live)", "[1]") removed."""
    text = _BRACKETS.sub(" ", _ascii(title)).replace("'", "")
    return " ".join(re.findall(r"[a-z0-9]+", text))


def artist_tokens(artist: str) -> frozenset[str]:
    """Word set of an artist ("Jett, Joan & The Blackhearts" and "Joan Jett" share words)."""
    text = _BRACKETS.sub(" ", _ascii(artist)).replace("'", "").replace("$", "s")
    return frozenset(t for t in re.findall(r"[a-z0-9]+", text) if len(t) >= 3 and t not in _STOP)


def duplicate_groups(examples: Sequence[Example]) -> dict[str, str]:
    """Map every example id to a group key; examples of one song share the key.

    Two examples are the same song when their normalised titles are equal and non-empty and
    their artists share a word (word order and "Last, First" spellings differ across sets).
    The key is the smallest id in the group, so it never depends on file order.
    """
    parent = {e.id: e.id for e in examples}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    by_title: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        key = normalise_title(example.title)
        if key:
            by_title[key].append(example)
    for bucket in by_title.values():
        tokens = [artist_tokens(e.artist) for e in bucket]
        for i in range(len(bucket)):
            for j in range(i + 1, len(bucket)):
                if tokens[i] & tokens[j]:
                    a, b = find(bucket[i].id), find(bucket[j].id)
                    if a != b:
                        parent[max(a, b)] = min(a, b)
    return {e.id: find(e.id) for e in examples}
