"""One analysis run: pick the items that need it, find lyrics, predict, store, write.

Shared by ``beet emotion`` and the import stage. Items stream through the model (lyrics
lookups run ahead of it on a small thread pool); each item's file is written as soon as its
result arrives and the database gets the items about once a second (``store_batch``), so an
interrupted run keeps everything finished so far.
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
from .lyrics_sources import LyricsFinder, LyricsOutcome
from .model import ModelHandle
from .model_inputs import LyricsInputs, predict_stream
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

        Raises ``ModelUnavailable`` before touching anything when the model cannot load.
        """
        summary = self.last_summary = Summary(pretend=options.pretend)
        summary.version = self.model.version() if items else ""
        run = _Run(library, options, summary, summary.version)
        todo = self._skip_current(items, run)
        run.albums = AlbumTracker(albums, related_albums, todo)
        try:
            if todo and not summary.store_error:  # a library that refuses writes: stop here
                with watch_interrupts() as interrupted:
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

    def _skip_current(self, items: Sequence[Any], run: _Run) -> list[Any]:
        """The items to analyse; those current already only get their file's tags synced."""
        todo: list[Any] = []
        for item in items:
            if run.options.force or not fields.is_current(item, run.version):
                todo.append(item)
                continue
            run.summary.skipped += 1
            if run.options.writes_now and not run.summary.store_error:
                try:
                    self._sync_file(item, run)
                except StoreFailed as error:
                    _not_stored(run.summary, error)
        return todo

    # -- per item -----------------------------------------------------------------------------

    def _predict(
        self, todo: list[Any], run: _Run, interrupted: Callable[[], bool] = lambda: False
    ) -> None:
        summary = run.summary
        inputs = LyricsInputs(self.finder, todo, force=run.options.force)
        progress = Progress(len(todo), enabled=run.options.progress)
        already_off = set(self.finder.network.disabled_reasons)
        results = predict_stream(self.model.predictor(), inputs, warn=summary.warnings.append)
        stores = run.stores = StoreBatch(defer_interrupts, run.library)
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
        _check_length(item, result.prediction, run.summary)
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
        except fields.NonFinitePrediction as error:
            # Nothing of a NaN result is kept: the item stays as it was and is not marked
            # current, so the next run analyses it again.
            run.summary.failed.append(Failure.of(item, RESULT, str(error)))
            return None
        kept_mood = self._keep_hand_set_mood(item, values, run.options)

        def counted() -> None:
            # Counted when stored: an interrupt must not leave a stored item out of the
            # summary, nor count one that is not.
            run.summary.tagged += 1
            run.summary.lyrics[outcome.label] += 1
            run.summary.kept_mood += kept_mood

        if run.options.pretend:
            counted()
            self.printer(_describe(item, values, fields.own_value(item, fields.MOOD)))
            return values
        sidecar = _update_item(item, values, outcome, run.options)
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
        if options.force or options.overwrite_mood:
            self.log.info(
                "{}: replacing mood {!r} set by hand with {!r}",
                item.filepath,
                fields.own_value(item, fields.MOOD),
                values[fields.MOOD],
            )
            return False
        values.pop(fields.MOOD)
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


def _update_item(
    item: Any, values: dict[str, Any], outcome: LyricsOutcome, options: RunOptions
) -> str | None:
    """Put a result in ``item`` (not stored yet), with what the lyrics lookup left to keep;
    returns LRC text to write beside the file now, if any."""
    item.update(values)
    deferred = options.deferred
    if deferred is not None and outcome.origin is not None:
        deferred.origins[item.id] = outcome.origin
    if outcome.misses:
        item[fields.LYRICS_MISSES] = fields.format_misses(outcome.misses)
    elif fields.LYRICS_MISSES in item:
        del item[fields.LYRICS_MISSES]
    fetched = outcome.fetched
    if fetched is None or not fetched.synced:
        return None
    if options.store_lyrics == "field":
        if not (fields.own_value(item, "lyrics") or "").strip():
            item["lyrics"] = fetched.text
    elif options.store_lyrics == "lrc":
        if deferred is None:
            return fetched.text
        deferred.sidecars[item.id] = fetched.text
    return None


def _not_stored(summary: Summary, error: StoreFailed) -> None:
    """Note a refused database write: the first reason, and every item it left unstored."""
    summary.store_error = summary.store_error or error.reason
    for entry in error.pending:
        path = os.fsdecode(entry.item.path)
        if entry.written:
            path += " (its file has the new tags; the next run stores them)"
        summary.not_stored.append(path)


def _check_length(item: Any, prediction: Any, summary: Summary) -> None:
    """A file that decodes to much less than its length is damaged or cut off: the result
    covers only what could be decoded, and the summary says so."""
    length = fields.own_value(item, "length")
    try:
        length = float(length or 0.0)
    except (TypeError, ValueError):
        return
    decoded = float(prediction.duration)
    if length > 0 and decoded < 0.9 * length - 1.0:
        summary.warnings.append(
            f"{os.fsdecode(item.path)}: only {decoded:.0f} s of {length:.0f} s could be decoded "
            "(damaged or truncated file?); analysed what was there"
        )


def label(model: Any) -> str:
    """How an item or album is named in messages: beets' format, or its path when untitled."""
    title = fields.own_value(model, "title" if hasattr(model, "title") else "album")
    if title:
        return str(model)
    path = getattr(model, "path", None)
    if path is None and hasattr(model, "item_dir"):
        path = model.item_dir()
    return os.fsdecode(path) if path else str(model)


def _describe(item: Any, values: dict[str, Any], current_mood: str | None) -> str:
    mood = values.get(fields.MOOD)
    mood_text = mood if mood is not None else f"{current_mood} (kept: set by hand)"
    probabilities = " ".join(
        f"{name} {values[column]:.2f}" for name, column in fields.PROBABILITY_FIELDS.items()
    )
    return (
        f"{label(item)}: mood {mood_text} [{probabilities}] "
        f"valence {values[fields.VALENCE]:+.2f} arousal {values[fields.AROUSAL]:+.2f} "
        f"gate audio {values[fields.GATE_AUDIO]:.2f} lyrics {values[fields.GATE_LYRICS]:.2f} "
        f"(lyrics: {values[fields.LYRICS_SOURCE]})"
    )
