"""Fixed, documented splits of the development data.

Held-out split (``heldout_split``), the one every reported figure uses:

1. Songs are grouped (:func:`~lgfn_model.training.datasets.duplicate_groups`): the same song in
   4Q, MIREX and NJU, or twice in one set, is one group and always lands on one side.
2. A source's own split wins: NJU's ``split`` column (and a manifest's ``split``) is kept. A group
   containing any prescribed ``test`` member is held out whole (so a MIREX clip of an NJU test song
   is held out too); a group with only prescribed ``train`` members trains.
3. Every other group is chosen by a stable hash: within each stratum (dataset x source label:
   4Q quadrant, MIREX cluster, manifest mood/signs) groups are ordered by
   ``sha256("lgfn-heldout-v1:" + group key)`` and taken in that order until the stratum has
   ``round(0.2 * size)`` held-out examples. Nothing depends on file order, RNG or the machine;
   adding songs to one stratum never moves songs of another.

Cross-dataset split (``cross_dataset_split``): train on 4Q + NJU, test on all MIREX-like clips.
4Q/NJU songs that also appear in MIREX are left out of training so that no test song is seen.

All (``all_split``): every development example trains, nothing is held out: the shipped models'
data once cross-validation has chosen their recipe (what a fold of K measures, on (K-1)/K of it).

Cross-validation (``kfold_splits``), the yardstick recipes are chosen by
(docs/cross-validation.md): every development example is tested exactly once, in one of K folds.

1. Songs are grouped as for the held-out split; a group never spans two folds.
2. Sources' own splits are ignored (NJU's ``split`` column, a manifest's): every NJU song is
   tested once like every other song, and a fold's training part holds NJU test songs too.
3. Groups are dealt to folds greedily, always to a fold with the fewest examples of the group's
   strata so far (ties: the smaller fold, then the lower index), in an order fixed by
   ``sha256("lgfn-kfold-v1:" + group key)``: groups with several members (one song in two sets)
   first, so that the single-song groups of each stratum even out what they added. So every
   stratum's fold sizes differ by at most one where it shares no song with another stratum,
   and the folds depend on the songs only, never on file order, RNG or the machine.

Leave-one-dataset-out (``leave_out_split``): train on every other dataset, test on all of one;
as in the cross-dataset split, songs of the training sets that also occur in the test set are
left out of training.

Low-label runs (``low_label``): a stratified, hash-chosen fraction of the training examples keep
their labels; the rest keep their audio/lyrics but lose their labels.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from lgfn_model.training.datasets import Example
from lgfn_model.training.duplicates import duplicate_groups

HELDOUT_FRACTION = 0.2
SPLIT_SALT = "lgfn-heldout-v1"
LOW_LABEL_SALT = "lgfn-lowlabel-v1"
KFOLD_SALT = "lgfn-kfold-v1"


@dataclass
class Split:
    """Train and test examples of one setting, with a short description of how it was made."""

    name: str
    train: list[Example]
    test: list[Example]
    description: str = ""
    excluded: list[Example] = field(default_factory=list)

    def summary(self) -> str:
        """One line per (dataset, label): train / test counts."""
        counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        for side, examples in enumerate((self.train, self.test, self.excluded)):
            for example in examples:
                counts[(example.dataset, example.label)][side] += 1
        lines = [
            f"{self.name}: {len(self.train)} train, {len(self.test)} test"
            + (f", {len(self.excluded)} excluded" if self.excluded else "")
        ]
        lines.append(f"  {'dataset':<8} {'label':<10} {'train':>6} {'test':>6}")
        for (dataset, label), (train, test, excl) in sorted(counts.items()):
            extra = f"  ({excl} excluded)" if excl else ""
            lines.append(f"  {dataset:<8} {label:<10} {train:>6} {test:>6}{extra}")
        return "\n".join(lines)


def stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def stratum(example: Example) -> tuple[str, str]:
    return (example.dataset, example.label)


def heldout_split(examples: Sequence[Example], fraction: float = HELDOUT_FRACTION) -> Split:
    """The fixed held-out split (see the module docstring)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError("fraction must be in (0, 1)")
    group_of = duplicate_groups(examples)
    members: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        members[group_of[example.id]].append(example)

    test_groups: set[str] = set()
    free: list[str] = []
    for key, group in members.items():
        fixed = {e.fixed_split for e in group if e.fixed_split}
        if "test" in fixed:
            test_groups.add(key)
        elif not fixed:
            free.append(key)

    sizes = Counter(stratum(e) for e in examples)
    target = {s: round(fraction * n) for s, n in sizes.items()}
    held = Counter(stratum(e) for key in test_groups for e in members[key])
    # A group's stratum is that of its smallest-id member; its members count in their own strata.
    by_stratum: dict[tuple[str, str], list[str]] = defaultdict(list)
    for key in free:
        first = min(members[key], key=lambda e: e.id)
        by_stratum[stratum(first)].append(key)
    for s in sorted(by_stratum):
        for key in sorted(by_stratum[s], key=lambda k: (stable_hash(f"{SPLIT_SALT}:{k}"), k)):
            if held[s] >= target[s]:
                break
            test_groups.add(key)
            held.update(stratum(e) for e in members[key])

    train = [e for e in examples if group_of[e.id] not in test_groups]
    test = [e for e in examples if group_of[e.id] in test_groups]
    return Split(
        "heldout",
        sorted(train, key=lambda e: e.id),
        sorted(test, key=lambda e: e.id),
        f"held-out {fraction:.0%} per dataset x label (sha256 of song group, salt {SPLIT_SALT}); "
        "NJU keeps its own train/test split; duplicate songs grouped",
    )


def cross_dataset_split(
    examples: Sequence[Example],
    train_sets: Sequence[str] = ("4q", "nju"),
    test_sets: Sequence[str] = ("mirex",),
) -> Split:
    """Train on ``train_sets``, test on ``test_sets``; training drops songs that are in both."""
    group_of = duplicate_groups(examples)
    test = [e for e in examples if e.dataset in test_sets]
    test_groups = {group_of[e.id] for e in test}
    train, excluded = [], []
    for example in examples:
        if example.dataset in train_sets:
            (excluded if group_of[example.id] in test_groups else train).append(example)
    return Split(
        "cross-dataset",
        sorted(train, key=lambda e: e.id),
        sorted(test, key=lambda e: e.id),
        f"train on {'+'.join(train_sets)}, test on {'+'.join(test_sets)}; "
        f"{len(excluded)} training songs that also occur in the test set left out",
        sorted(excluded, key=lambda e: e.id),
    )


def all_split(examples: Sequence[Example]) -> Split:
    """Every example trains; the test part is empty (measure the recipe by cross-validation)."""
    return Split(
        "all",
        sorted(examples, key=lambda e: e.id),
        [],
        "every development example (MoodyLyrics4Q and both NJU halves included); none held out",
    )


def _groups(examples: Sequence[Example]) -> dict[str, list[Example]]:
    group_of = duplicate_groups(examples)
    members: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        members[group_of[example.id]].append(example)
    return members


def _dealing_order(members: dict[str, list[Example]], salt: str) -> list[str]:
    """Group keys in the order they are dealt: shared songs first, then stratum by stratum;
    within each, by the salted hash (the key breaks the astronomically rare tie)."""

    def order(key: str) -> tuple[int, tuple[str, str], int, str]:
        group = members[key]
        first = min(group, key=lambda e: e.id)
        single = 1 if len(group) == 1 else 0
        return (single, stratum(first) if single else ("", ""), stable_hash(f"{salt}:{key}"), key)

    return sorted(members, key=order)


def kfold_splits(examples: Sequence[Example], k: int, salt: str = KFOLD_SALT) -> list[Split]:
    """K grouped, stratified folds over ``examples`` (see the module docstring).

    Split ``i`` tests fold ``i`` and trains on the other K-1; NJU's own train/test column is
    ignored. Raises ValueError when there are fewer song groups than folds.
    """
    if k < 2:
        raise ValueError("cross-validation needs at least 2 folds")
    members = _groups(examples)
    if len(members) < k:
        raise ValueError(f"{len(members)} song groups cannot fill {k} folds")
    counts: list[Counter[tuple[str, str]]] = [Counter() for _ in range(k)]
    totals = [0] * k
    fold_of: dict[str, int] = {}
    for key in _dealing_order(members, salt):
        strata = Counter(stratum(e) for e in members[key])

        def cost(fold: int, strata: Counter[tuple[str, str]] = strata) -> tuple[int, int, int]:
            return (sum(counts[fold][s] * n for s, n in strata.items()), totals[fold], fold)

        chosen = min(range(k), key=cost)
        fold_of[key] = chosen
        counts[chosen].update(strata)
        totals[chosen] += len(members[key])
    return [_fold_split(members, fold_of, i, k, salt) for i in range(k)]


def _fold_split(
    members: dict[str, list[Example]], fold_of: dict[str, int], index: int, k: int, salt: str
) -> Split:
    train = [e for key, group in members.items() if fold_of[key] != index for e in group]
    test = [e for key, group in members.items() if fold_of[key] == index for e in group]
    return Split(
        f"fold{index + 1}of{k}",
        sorted(train, key=lambda e: e.id),
        sorted(test, key=lambda e: e.id),
        f"fold {index + 1} of {k}: grouped, stratified by dataset x label (sha256 of song group, "
        f"salt {salt}); sources' own train/test splits (NJU) ignored; duplicate songs grouped",
    )


def leave_out_split(examples: Sequence[Example], dataset: str) -> Split:
    """Train on every dataset but ``dataset``, test on all of it (a leave-one-dataset-out run)."""
    present = sorted({e.dataset for e in examples})
    if dataset not in present:
        raise ValueError(f"--leave-out {dataset}: no such dataset in the data ({present})")
    others = [name for name in present if name != dataset]
    if not others:
        raise ValueError(f"--leave-out {dataset}: no other dataset left to train on")
    split = cross_dataset_split(examples, train_sets=others, test_sets=(dataset,))
    return replace(split, name=f"leave-out-{dataset}")


def low_label(examples: Sequence[Example], fraction: float = 0.3, seed: int = 0) -> list[Example]:
    """Keep labels on ``fraction`` of each stratum (hash-chosen with ``seed``); strip the rest."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError("fraction must be in (0, 1]")
    by_stratum: dict[tuple[str, str], list[Example]] = defaultdict(list)
    for example in examples:
        by_stratum[stratum(example)].append(example)
    keep: set[str] = set()
    for group in by_stratum.values():
        ordered = sorted(
            group, key=lambda e: (stable_hash(f"{LOW_LABEL_SALT}:{seed}:{e.id}"), e.id)
        )
        keep.update(e.id for e in ordered[: max(1, round(fraction * len(group)))])
    return [e if e.id in keep else e.without_labels() for e in examples]


SPLITS = {"heldout": heldout_split, "cross-dataset": cross_dataset_split, "all": all_split}
MEASURING_SPLITS = ("heldout", "cross-dataset")
"""The splits with a test part to measure on (``all`` holds nothing out)."""


def make_split(name: str, examples: Sequence[Example]) -> Split:
    try:
        return SPLITS[name](examples)
    except KeyError:
        raise ValueError(f"unknown split {name!r}; choose from {sorted(SPLITS)}") from None
