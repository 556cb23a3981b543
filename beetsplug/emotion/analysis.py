"""One analysis run: pick the items that need it, find lyrics, predict, store, write.

Shared by ``beet emotion``, ``--learn`` and the import stage. Items stream through the model
(lyrics lookups run ahead of it on a small thread pool); each item's file is written as soon
as its result arrives and the database gets the items about once a second (``store_batch``),
so an interrupted run keeps everything finished so far.

Items analysed by the model in use but tagged through another mood head (before ``--learn``,
or before ``--learn --reset``) are re-tagged from their stored embedding: no audio is decoded
and no model is loaded (personal.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import fields, tags
from .albums import AlbumTracker
from .failures import READ, RESULT, WRITE, Failure
from .import_state import DeferredFiles
from .interrupts import defer_interrupts, watch_interrupts
from .item_values import check_length, describe, label, personal_values, stored_values, update_item
from .lyrics_sources import LyricsFinder, LyricsOutcome
from .model import ModelHandle
from .model_inputs import LyricsInputs, predict_stream
from .personal import PersonalModel, Scorer, stored_embedding
from .progress import Progress, Summary
from .settings import DEFAULTS
from .sidecars import write_sidecar
from .store_batch import Pending, StoreBatch, StoreFailed, commit


@dataclass
class RunOptions:
    force: bool = False
    write: bool = False
    pretend: bool = False
    overwrite_mood: bool = False
    store_lyrics: str = DEFAULTS["store_lyrics"]
    id3v23: bool = False
    id3_mood_frame: str = DEFAULTS["id3_mood_frame"]
    progress: bool = True
    reanalyse: bool = False
    """Analyse items current already, keeping moods set by hand (``--learn`` needs the
    embeddings of labelled tracks analysed before embeddings were stored)."""
    deferred: DeferredFiles | None = None
    """Import mode: leave files alone (they may still be the user's originals); what belongs
    beside them waits here, and the plugin writes tags and sidecars once the importer has put
    the files in place."""

    @property
    def defer_files(self) -> bool:
        return self.deferred is not None

    @property
    def writes_now(self) -> bool:
        """Tags go into the files during this run."""
        return self.write and not self.pretend and not self.defer_files


@dataclass
class _Run:
    """One run's state, handed to the steps instead of a parameter each."""

    library: Any
    options: RunOptions
    summary: Summary
    version: str
    base: str = ""
    """The model's own version (``version`` is the listener's head's, when one is used)."""
    personal: Scorer | None = None
    """The listener's head, fitted to this model, when one is stored."""
    albums: AlbumTracker | None = None
    stores: StoreBatch | None = None


@dataclass
class Analyzer:
    model: ModelHandle
    finder: LyricsFinder
    log: Any
    printer: Callable[[str], None] = print
    last_summary: Summary | None = None
    """The summary of the latest run, also when it was interrupted."""
    personal: PersonalModel | None = None
    """Where the listener's learned head is kept (None: always the shipped head)."""

    def run(
        self,
        library: Any,
        items: Sequence[Any],
        options: RunOptions,
        albums: Sequence[Any] = (),
        related_albums: Sequence[Any] = (),
    ) -> Summary:
        """Analyse ``items`` of ``library`` (and aggregate ``albums`` once all their tracks are
        done).

        ``related_albums`` (the albums the items belong to) are aggregated again only when
        one of their tracks is re-analysed: an album must never keep the mood and model of
        tracks that have since changed.

        Raises ``ModelUnavailable`` before touching anything when the model cannot load, and
        ``PersonalHeadUnusable`` when the listener's stored head cannot be read.
        """
        summary = self.last_summary = Summary(pretend=options.pretend)
        run = self._start(library, items, options, summary)
        todo, retag = self._skip_current(items, run)
        run.albums = AlbumTracker(albums, related_albums, [*retag, *todo])
        run.stores = StoreBatch(defer_interrupts, library)
        try:
            if (todo or retag) and not summary.store_error:  # a library refusing writes: stop
                with watch_interrupts() as interrupted:
                    if retag:
                        self._retag(retag, run, interrupted)
                    if todo and not summary.store_error:
                        self._predict(todo, run, interrupted)
        except KeyboardInterrupt:
            summary.interrupted = True
            raise
        finally:
            if not summary.interrupted and not summary.store_error:
                try:
                    for album in run.albums.complete():
                        self._finish_album(album, run)
                except StoreFailed as error:
                    _not_stored(summary, error)
        return summary

    def _start(
        self, library: Any, items: Sequence[Any], options: RunOptions, summary: Summary
    ) -> _Run:
        """The run's versions: the model's, and the listener's head's when one fits it."""
        base = self.model.version() if items else ""
        personal = None
        if items and self.personal is not None:
            personal, warning = self.personal.active(base)
            if warning:
                summary.warnings.append(warning)
        summary.version = personal.version if personal is not None else base
        return _Run(library, options, summary, summary.version, base, personal)

    def _skip_current(self, items: Sequence[Any], run: _Run) -> tuple[list[Any], list[Any]]:
        """The items to analyse, and those to re-tag from their stored embedding; the items
        current already only get their file's tags synced."""
        todo: list[Any] = []
        retag: list[Any] = []
        again = run.options.force or run.options.reanalyse
        for item in items:
            if again:
                todo.append(item)
                continue
            if not fields.is_current(item, run.version):
                (retag if self._embedding_of(item, run) is not None else todo).append(item)
                continue
            run.summary.skipped += 1
            if run.options.writes_now and not run.summary.store_error:
                try:
                    self._sync_file(item, run)
                except StoreFailed as error:
                    _not_stored(run.summary, error)
        return todo, retag

    def _embedding_of(self, item: Any, run: _Run) -> list[float] | None:
        """The item's stored embedding, when the model in use made it and a head can read it."""
        if self.personal is None:
            return None
        return stored_embedding(item, run.base, self.personal.scorer(run.personal).dim)

    def _retag(self, retag: list[Any], run: _Run, interrupted: Callable[[], bool]) -> None:
        """Items the model in use analysed through another head: their mood from the stored
        embedding (the listener's head, or the shipped one), without decoding anything."""
        assert self.personal is not None and run.stores is not None
        scorer = self.personal.scorer(run.personal)
        try:
            for item in retag:
                embedding = self._embedding_of(item, run)
                assert embedding is not None  # checked by _skip_current
                values = fields.mood_fields(scorer.probabilities(embedding), run.version)
                stored = self._store(run, item, values, None)
                if stored is not None and run.albums is not None:
                    run.albums.record(item, stored)
                run.stores.flush_if_due()
                if interrupted():
                    raise KeyboardInterrupt
                self._track_done(item, run)
        except StoreFailed as error:
            _not_stored(run.summary, error)
        finally:
            try:
                run.stores.flush()
            except StoreFailed as error:
                _not_stored(run.summary, error)

    # -- per item -----------------------------------------------------------------------------

    def _predict(
        self, todo: list[Any], run: _Run, interrupted: Callable[[], bool] = lambda: False
    ) -> None:
        summary = run.summary
        inputs = LyricsInputs(self.finder, todo, force=run.options.force)
        progress = Progress(len(todo), enabled=run.options.progress)
        already_off = set(self.finder.network.disabled_reasons)
        results = predict_stream(self.model.predictor(), inputs, warn=summary.warnings.append)
        stores = run.stores
        assert stores is not None
        try:
            for result in results:
                item = self._take(result, inputs, run)
                progress.advance()
                stores.flush_if_due()
                if interrupted():
                    raise KeyboardInterrupt  # one swallowed on its way still stops the run
                self._track_done(item, run)
        except StoreFailed as error:
            # The database refuses writes (disk full, say): every later item would be one
            # more file written and not stored, so the run stops and lists those it has.
            _not_stored(summary, error)
        finally:
            try:
                stores.flush()  # also on Ctrl-C: every written file gets its item stored
            except StoreFailed as error:
                _not_stored(summary, error)
            results.close()
            progress.close()
            for name, reason in self.finder.network.disabled_reasons.items():
                if name not in already_off:
                    summary.lyrics_errors.append(f"{name}: not asked again in this run ({reason})")

    def _take(self, result: Any, inputs: LyricsInputs, run: _Run) -> Any:
        """One result from the model: stored and written, or listed as failed."""
        item, outcome = inputs.take(result.input.key)
        if result.error or result.prediction is None:
            # One line per bad file: its lyrics errors (embedded tags of a broken file, say)
            # would only repeat the failure.
            run.summary.failed.append(Failure.from_model(item, result.error))
            return item
        run.summary.lyrics_errors.extend(outcome.errors)
        check_length(item, result.prediction, run.summary)
        values = self._apply(run, item, result.prediction, outcome)
        if values is not None and run.albums is not None:
            run.albums.record(item, values)
        return item

    def _track_done(self, item: Any, run: _Run) -> None:
        album = run.albums.done(item) if run.albums is not None else None
        if album is not None:
            if run.stores is not None:
                run.stores.flush()  # the album reads its tracks from the database
            self._finish_album(album, run)

    def _apply(
        self, run: _Run, item: Any, prediction: Any, outcome: LyricsOutcome
    ) -> dict[str, Any] | None:
        """Write one result to the file and queue it in the run's store batch; None when the
        file could not be written, in which case the item is left exactly as it was, in the
        database and in the file."""
        try:
            values = fields.prediction_fields(prediction, outcome.label, run.version)
            if run.personal is not None:
                values.update(personal_values(prediction, run.personal, run.version))
        except fields.NonFinitePrediction as error:
            # Nothing of a NaN result is kept: the item stays as it was and is not marked
            # current, so the next run analyses it again.
            run.summary.failed.append(Failure.of(item, RESULT, str(error)))
            return None
        return self._store(run, item, values, outcome)

    def _store(
        self, run: _Run, item: Any, values: dict[str, Any], outcome: LyricsOutcome | None
    ) -> dict[str, Any] | None:
        """``values`` into the item's file and the run's store batch (``outcome`` None: a
        re-tag from the stored embedding); None when the file could not be written."""
        kept_mood = self._keep_hand_set_mood(item, values, run.options)

        def counted() -> None:
            # Counted when stored: an interrupt must not leave a stored item out of the
            # summary, nor count one that is not.
            run.summary.tagged += 1
            if outcome is None:
                run.summary.retagged += 1
            else:
                run.summary.lyrics[outcome.label] += 1
            run.summary.kept_mood += kept_mood

        if run.options.pretend:
            counted()
            shown = {**stored_values(item), **values}
            if fields.MOOD not in values:
                shown.pop(fields.MOOD, None)  # kept: _describe says so
            self.printer(describe(item, shown, fields.own_value(item, fields.MOOD)))
            return values
        sidecar = update_item(item, values, outcome, run.options)
        # File first, then the database: a file that cannot be written leaves the item as it
        # was (it is retried on the next run). Ctrl-C is held back while the file is written,
        # and an interrupted run still stores the queued items (see store_batch).
        with defer_interrupts():
            written = run.options.write and not run.options.defer_files
            if written and not self._write_new_tags(item, run):
                return None
            assert run.stores is not None
            run.stores.add(item, counted, written=written)
        if sidecar is not None:
            write_sidecar(item, sidecar, self.log)
        return values

    def _keep_hand_set_mood(self, item: Any, values: dict[str, Any], options: RunOptions) -> bool:
        """Drop the new mood from ``values`` when the item's was set by hand (and not to be
        replaced); True when it was kept."""
        if not fields.has_user_mood(item):
            return False
        if (options.force or options.overwrite_mood) and not options.reanalyse:
            self.log.info(
                "{}: replacing mood {!r} set by hand with {!r}",
                item.filepath,
                fields.own_value(item, fields.MOOD),
                values[fields.MOOD],
            )
            return False
        values.pop(fields.MOOD)
        # Marked: once a model agrees with it, the mood would otherwise look like its own.
        values[fields.MOOD_BY_HAND] = True
        return True

    def _write_new_tags(self, item: Any, run: _Run) -> bool:
        """The analysed item's tags into its file; False (the item reloaded) when refused."""
        try:
            self._write_tags(item, run.options)
        except tags.TagError as error:
            item.load()  # drop the unsaved values
            note = "; nothing stored (-W stores without writing)"
            run.summary.failed.append(Failure.from_tag_error(error, WRITE, note))
            return False
        item.mtime = item.current_mtime()
        run.summary.written += 1
        return True

    @staticmethod
    def _write_tags(item: Any, options: RunOptions) -> None:
        tags.write_tags(
            item.path,
            tags.values_to_write(item),
            id3v23=options.id3v23,
            mood_frame=options.id3_mood_frame,
        )

    def _write(self, item: Any, run: _Run) -> None:
        with defer_interrupts():
            try:
                self._write_tags(item, run.options)
            except tags.TagError as error:
                run.summary.write_failed.append(Failure.from_tag_error(error, WRITE))
                self.log.warning("{}", error)
                return
            item.mtime = item.current_mtime()
            run.summary.written += 1
            try:
                commit(run.library, lambda: item.store(["mtime"]))
            except StoreFailed as error:
                error.pending = [Pending(item, lambda: None, written=True)]
                raise

    def _sync_file(self, item: Any, run: _Run) -> None:
        """An item skipped as current still gets its tags written when its file lacks them."""
        options = run.options
        values = tags.values_to_write(item)
        try:
            differ = tags.tags_differ(
                item.path, values, id3v23=options.id3v23, mood_frame=options.id3_mood_frame
            )
        except tags.TagError as error:
            run.summary.write_failed.append(Failure.from_tag_error(error, READ))
            return
        if differ:
            self._write(item, run)

    # -- albums -------------------------------------------------------------------------------

    def _finish_album(self, album: Any, run: _Run) -> None:
        assert run.albums is not None
        values = run.albums.aggregate(album)
        if values is None:
            return
        run.summary.albums += 1
        if run.options.pretend:
            self.printer(
                f"album {label(album)}: {fields.ALBUM_MOOD} {values[fields.ALBUM_MOOD]}, "
                f"valence {values['album_emotion_valence']:+.2f}, "
                f"arousal {values['album_emotion_arousal']:+.2f}"
            )
            return
        album.update(values)
        # inherit=False: Album.store() would otherwise copy the album's flexible fields onto
        # every track.
        try:
            commit(run.library, lambda: album.store(inherit=False))
        except StoreFailed:
            run.summary.albums -= 1
            raise


def _not_stored(summary: Summary, error: StoreFailed) -> None:
    """Note a refused database write: the first reason, and every item it left unstored."""
    summary.store_error = summary.store_error or error.reason
    for entry in error.pending:
        path = os.fsdecode(entry.item.path)
        if entry.written:
            path += " (its file has the new tags; the next run stores them)"
        summary.not_stored.append(path)
