"""``beet emotion --learn``: fit the mood head to the moods a listener set by hand.

The labels are the moods the plugin did not set (``fields.has_user_mood``), mapped to the four
by ``mood_words``. Each labelled track needs the embedding of the model in use; tracks
analysed before embeddings were stored are analysed once more first (their moods kept). The
head is fitted by ``lgfn_model.training.adaptation.adapt`` (cross-validated penalty towards the
shipped head, measured in the coordinates of every track's stored embedding; a few seconds for
hundreds of labels), saved beside the library's configuration
(personal.py), and the library is re-tagged from its stored embeddings: no audio is decoded
for any track that has one. ``--reset`` removes the head and re-tags back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import fields
from .analysis import Analyzer, RunOptions
from .mood_words import Labels, read_labels, word_table
from .personal import Scorer, shown, stored_embedding
from .progress import Summary

MOVES_SHOWN = 8
"""The most mood changes listed one by one (the rest are summed)."""


class LearningError(Exception):
    """Nothing can be learned (no usable labels); the message says what to do, in one line."""


@dataclass
class LibraryEmbeddings:
    """The library's tracks that have a stored embedding of the model in use, with it, and how
    many analysed tracks have none: one pass over the library per ``--learn`` or ``--reset``
    (the penalty is measured over these tracks, and they are the ones re-tagged)."""

    tracks: list[Any]
    vectors: list[list[float]]
    without: int

    @classmethod
    def read(cls, library: Any, base: str, dim: int) -> LibraryEmbeddings:
        tracks, vectors, without = [], [], 0
        for item in library.items():
            vector = stored_embedding(item, base, dim)
            if vector is not None:
                tracks.append(item)
                vectors.append(vector)
            elif fields.own_value(item, fields.MODEL):
                without += 1
        return cls(tracks, vectors, without)


class Learner:
    def __init__(
        self,
        analyzer: Analyzer,
        printer: Callable[[str], None],
        extra_words: Mapping[str, str] | None = None,
    ) -> None:
        assert analyzer.personal is not None
        self.analyzer = analyzer
        self.personal = analyzer.personal
        self.printer = printer
        self.table = word_table(extra_words)

    # -- learning -------------------------------------------------------------------------------

    def learn(self, library: Any, items: Sequence[Any], options: RunOptions) -> Summary | None:
        """Fit, save and re-tag; the re-tagging run's summary (None when nothing changed)."""
        base = self.analyzer.model.version()
        shipped = self.personal.shipped()
        labels = self._labels(items)
        if not labels.moods:
            raise LearningError(_no_labels(labels))
        labels = self._with_embeddings(library, labels, base, shipped.dim, options)
        counts = labels.counts()
        used = ", ".join(f"{mood} {n}" for mood, n in counts.items() if n)
        self.printer(f"emotion: learning from {len(labels.moods)} mood(s) set by hand ({used})")
        if sum(1 for n in counts.values() if n) < 2:
            raise LearningError(
                "every label is the same mood: set moods of at least two kinds by hand (the "
                "model learns where one mood ends and the next begins)"
            )
        if not options.pretend:
            _mark_as_labels(library, labels)
        # Read after the labels are marked: the re-tagging stores these very items.
        embedded = LibraryEmbeddings.read(library, base, shipped.dim)
        adaptation = self._fit(labels, shipped, embedded)
        self._report(adaptation, shipped)
        if not adaptation.changed:
            self.printer(
                f"emotion: no adaptation fits your labels better than {base}; keeping it"
                + (" (too few labels: each mood you use needs 2)" if _too_few(counts) else "")
            )
            if self.personal.stored() is None:
                return None
            return self._apply_head(
                library, embedded, None, options, "your earlier learned moods removed"
            )
        from lgfn_model.runtime.personal_head import PersonalHead

        personal = PersonalHead(
            base,
            shipped.labels,
            adaptation.head,
            {
                "labels": counts,
                "strength": adaptation.strength,
                "penalty_measured_over_tracks": len(embedded.tracks),
                "cv_accuracy_adapted": adaptation.cv_accuracy_adapted,
                "cv_accuracy_shipped": adaptation.cv_accuracy_shipped,
            },
        )
        scorer = Scorer(personal.labels, personal.head, personal.version)
        return self._apply_head(
            library, embedded, personal, options, f"saved {scorer.version}", scorer
        )

    def _labels(self, items: Sequence[Any]) -> Labels:
        hand_set = [
            (item, str(fields.own_value(item, fields.MOOD)))
            for item in items
            if fields.has_user_mood(item)
        ]
        labels = read_labels(hand_set, self.table)
        if labels.skipped:
            words = ", ".join(f"{word!r} ({n})" for word, n in sorted(labels.skipped.items()))
            self.printer(
                f"emotion: skipped {sum(labels.skipped.values())} track(s) whose mood is none of "
                f"the four: {words} (map a word with the mood_words option)"
            )
        return labels

    def _with_embeddings(
        self, library: Any, labels: Labels, base: str, dim: int, options: RunOptions
    ) -> Labels:
        """The labels whose track has (or, analysed now, gets) the model's embedding."""
        missing = [item for item, _ in labels.moods if stored_embedding(item, base, dim) is None]
        if missing and options.pretend:
            self.printer(
                f"emotion: {len(missing)} labelled track(s) have no stored embedding of {base}: "
                "left out here; --learn without -p analyses them first"
            )
        elif missing:
            self.printer(
                f"emotion: analysing {len(missing)} labelled track(s) with no stored embedding "
                f"of {base} (their moods are kept)"
            )
            run = RunOptions(**{**vars(options), "reanalyse": True, "pretend": False})
            summary = self.analyzer.run(library, missing, run)
            for line in summary.lines()[1:]:
                if line.lstrip().startswith(("failed:", "not stored:", "warning:")):
                    self.printer(line)
            if summary.store_error:
                raise LearningError(f"{summary.store_error}; nothing learned")
        kept = Labels(skipped=labels.skipped)
        for item, mood in labels.moods:
            if stored_embedding(item, base, dim) is not None:
                kept.moods.append((item, mood))
        if len(kept.moods) < len(labels.moods) and not options.pretend:
            self.printer(
                f"emotion: {len(labels.moods) - len(kept.moods)} labelled track(s) left out: "
                "they could not be analysed (listed above)"
            )
        if not kept.moods:
            raise LearningError("no labelled track has an embedding yet; nothing learned")
        return kept

    def _fit(self, labels: Labels, shipped: Scorer, embedded: LibraryEmbeddings) -> Any:
        """The adaptation, its penalty measured over every track of the library that has an
        embedding (the tracks the head will re-tag)."""
        import numpy as np

        from lgfn_model.training.adaptation import adapt

        base = self.analyzer.model.version()
        embeddings = np.array(
            [stored_embedding(item, base, shipped.dim) for item, _ in labels.moods]
        )
        index = {label: i for i, label in enumerate(shipped.labels)}
        truth = np.array([index[mood] for _, mood in labels.moods])
        return adapt(embeddings, truth, shipped.head, library=np.array(embedded.vectors))

    def _report(self, adaptation: Any, shipped: Scorer) -> None:
        if adaptation.cv_accuracy_adapted is None:
            self.printer(
                "emotion: too few labels to cross-validate (each mood you use needs at least "
                "2 tracks)"
            )
            return
        gain = adaptation.cv_accuracy_adapted - adaptation.cv_accuracy_shipped
        self.printer(
            f"emotion: on your labels, cross-validated: {shipped.version} "
            f"{adaptation.cv_accuracy_shipped:.0%} right, adapted "
            f"{adaptation.cv_accuracy_adapted:.0%} ({gain * 100:+.0f} points)"
        )

    # -- re-tagging -----------------------------------------------------------------------------

    def reset(self, library: Any, options: RunOptions) -> Summary | None:
        stored = self.personal.stored()
        if stored is None:
            self.printer("emotion: nothing learned to reset; the shipped model is in use")
            return None
        base = self.analyzer.model.version()
        embedded = LibraryEmbeddings.read(library, base, self.personal.shipped().dim)
        return self._apply_head(
            library, embedded, None, options, f"removed {stored.version}; back to {stored.base}"
        )

    def _apply_head(
        self,
        library: Any,
        embedded: LibraryEmbeddings,
        personal: Any,
        options: RunOptions,
        done: str,
        scorer: Scorer | None = None,
    ) -> Summary | None:
        """Save ``personal`` (None: remove the stored head) and re-tag the library's tracks
        that have an embedding of the model in use; ``-p`` shows the moves and saves nothing."""
        from lgfn_model.runtime.personal_head import remove_personal_head, save_personal_head

        base = self.analyzer.model.version()
        self._show_moves(embedded, scorer or self.personal.shipped())
        if options.pretend:
            self.printer("emotion: pretend: nothing saved, nothing re-tagged")
            return None
        if personal is None:
            remove_personal_head(self.personal.folder)
        else:
            save_personal_head(self.personal.folder, personal)
        self.printer(f"emotion: {done} ({shown(self.personal.folder)})")
        if embedded.without:
            self.printer(
                f"emotion: {embedded.without} analysed track(s) have no stored embedding of "
                f"{base}: `beet emotion` analyses them again (decoding their audio)"
            )
        return self.analyzer.run(library, embedded.tracks, options)

    def _show_moves(self, embedded: LibraryEmbeddings, target: Scorer) -> None:
        moves: Counter[tuple[str, str]] = Counter()
        own = 0
        for item, embedding in zip(embedded.tracks, embedded.vectors, strict=True):
            if fields.has_user_mood(item):
                continue  # stays as the listener set it
            own += 1
            probabilities = target.probabilities(embedding)
            new = max(probabilities, key=probabilities.__getitem__)
            old = str(fields.own_value(item, fields.MOOD) or "")
            if new != old:
                moves[(old or "none", new)] += 1
        total = sum(moves.values())
        if not total:
            self.printer(f"emotion: no mood the plugin set changes ({own} track(s))")
            return
        listed = ", ".join(f"{a} -> {b} {n}" for (a, b), n in moves.most_common(MOVES_SHOWN))
        rest = total - sum(n for _, n in moves.most_common(MOVES_SHOWN))
        if rest:
            listed += f", other {rest}"
        self.printer(
            f"emotion: {total} of the {own} mood(s) the plugin set change ({listed}); moods set "
            "by hand stay"
        )


def _mark_as_labels(library: Any, labels: Labels) -> None:
    """Every label keeps counting as the listener's once the head agrees with it."""
    from .store_batch import StoreFailed, commit

    marked = [item for item, _ in labels.moods if not fields.own_value(item, fields.MOOD_BY_HAND)]

    def store() -> None:
        for item in marked:
            item[fields.MOOD_BY_HAND] = True
            item.store([fields.MOOD_BY_HAND])

    if marked:
        try:
            commit(library, store)
        except StoreFailed as error:
            raise LearningError(f"{error.reason}; nothing learned") from None


def _too_few(counts: Mapping[str, int]) -> bool:
    return any(0 < n < 2 for n in counts.values())


def _no_labels(labels: Labels) -> str:
    if labels.skipped:
        return (
            "no mood set by hand is one of happy, angry, sad, relaxed or a word for them "
            "(see the skipped words above); nothing learned"
        )
    return (
        "no mood set by hand in the tracks matched: set some with `beet modify QUERY mood=sad` "
        "(a mood the plugin set and you agree with: add emotion_mood_by_hand=true)"
    )
