"""One analysis run: pick the items that need it, find lyrics, predict, store, write.

Shared by ``beet emotion`` and the import stage. Items stream through the model (lyrics
lookups run ahead of it on a small thread pool); each item's file is written as soon as its
result arrives and the database gets the items about once a second (``store_batch``), so an
interrupted run keeps everything finished so far.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import fields, tags
from .lyrics_sources import LyricsFinder, LyricsOutcome
from .model import ModelHandle
from .parallel import ordered_map
from .progress import Progress, Summary
from .store_batch import Pending, StoreBatch, StoreFailed, commit

STORE_LYRICS_CHOICES = ("no", "field", "lrc")


@dataclass
class RunOptions:
    force: bool = False
    write: bool = False
    pretend: bool = False
    overwrite_mood: bool = False
    store_lyrics: str = "no"
    id3v23: bool = False
    id3_mood_frame: str = "auto"
    progress: bool = True
    defer_files: bool = False
    """Import mode: leave files alone (they may still be the user's originals); the plugin
    writes tags and sidecars once the importer has put the files in place."""


@dataclass
class _Work:
    item: Any
    outcome: LyricsOutcome | None = None


@dataclass
class Analyzer:
    model: ModelHandle
    finder: LyricsFinder
    log: Any
    printer: Callable[[str], None] = print
    pending_sidecars: dict[int, str] = field(default_factory=dict)
    """Import mode: LRC text to write beside an item once its file is in the library."""
    sidecar_origins: dict[int, Path] = field(default_factory=dict)
    """Import mode: the ``.lrc`` each item's lyrics came from, to copy beside the new file."""
    last_summary: Summary | None = None
    """The summary of the latest run, also when it was interrupted."""

    def run(
        self,
        items: Sequence[Any],
        options: RunOptions,
        albums: Sequence[Any] = (),
        related_albums: Sequence[Any] = (),
    ) -> Summary:
        """Analyse ``items`` (and aggregate ``albums`` once all their tracks are done).

        ``related_albums`` (the albums the items belong to) are aggregated again only when
        one of their tracks is re-analysed: an album must never keep the mood and model of
        tracks that have since changed.

        Raises ``ModelUnavailable`` before touching anything when the model cannot load.
        """
        summary = self.last_summary = Summary(pretend=options.pretend)
        version = self.model.version() if items else ""
        summary.version = version
        todo: list[Any] = []
        for item in items:
            if not options.force and fields.is_current(item, version):
                summary.skipped += 1
                if (
                    options.write
                    and not options.pretend
                    and not options.defer_files
                    and not summary.store_error
                ):
                    try:
                        self._sync_file(item, summary, options)
                    except StoreFailed as error:
                        _not_stored(summary, error)
            else:
                todo.append(item)

        fresh: dict[int, dict[str, Any]] = {}
        album_of: dict[int, Any] = {}
        waiting: dict[int, set[int]] = {}
        albums = [*albums, *_touched(related_albums, todo, {a.id for a in albums})]
        for album in albums:
            waiting[album.id] = set()
            for track in album.items():
                album_of[track.id] = album
        for item in todo:
            album = album_of.get(item.id)
            if album is not None:
                waiting[album.id].add(item.id)

        try:
            if todo and not summary.store_error:  # a library that refuses writes: stop here
                with _watch_interrupts() as interrupted:
                    self._predict(
                        todo, version, options, summary, fresh, album_of, waiting, interrupted
                    )
        except KeyboardInterrupt:
            summary.interrupted = True
            raise
        finally:
            if not summary.interrupted and not summary.store_error:
                try:
                    for album in albums:
                        if waiting.get(album.id) == set():
                            self._finish_album(album, options, summary, fresh)
                except StoreFailed as error:
                    _not_stored(summary, error)
        return summary

    # -- per item -----------------------------------------------------------------------------

    def _predict(
        self,
        todo: list[Any],
        version: str,
        options: RunOptions,
        summary: Summary,
        fresh: dict[int, dict[str, Any]],
        album_of: dict[int, Any],
        waiting: dict[int, set[int]],
        interrupted: Callable[[], bool] = lambda: False,
    ) -> None:
        from lgfn_model.runtime.predictor import TrackInput

        predictor = self.model.predictor()
        predictor.warn = summary.warnings.append
        work = [_Work(item) for item in todo]

        def lookup(index: int) -> int:
            work[index].outcome = self.finder.find(work[index].item, force=options.force)
            return index

        def inputs() -> Iterator[Any]:
            threads = self.finder.settings.threads if self.finder.uses_network else 0
            for index in ordered_map(lookup, range(len(work)), threads):
                outcome = work[index].outcome
                path = Path(os.fsdecode(work[index].item.path))
                yield TrackInput(path, outcome.lyrics if outcome else None, index)

        progress = Progress(len(todo), enabled=options.progress)
        already_off = set(self.finder.network.disabled_reasons)
        results = predictor.predict_many(inputs())
        stores = StoreBatch(defer_interrupts)
        try:
            for result in results:
                entry = work[result.input.key]
                item, outcome = entry.item, entry.outcome or LyricsOutcome()
                if result.error or result.prediction is None:
                    # One line per bad file: its lyrics errors (embedded tags of a broken
                    # file, say) would only repeat the failure.
                    summary.failed.append(_failure(item, result.error or "no result"))
                else:
                    summary.lyrics_errors.extend(outcome.errors)
                    _check_length(item, result.prediction, summary)
                    values = self._apply(
                        item, result.prediction, outcome, version, options, summary, stores
                    )
                    if values is not None:
                        fresh[item.id] = values
                progress.advance()
                stores.flush_if_due()
                if interrupted():
                    raise KeyboardInterrupt  # one swallowed on its way still stops the run
                album = album_of.get(item.id)
                if album is not None and item.id in waiting.get(album.id, set()):
                    waiting[album.id].discard(item.id)
                    if not waiting[album.id]:
                        stores.flush()  # the album reads its tracks from the database
                        self._finish_album(album, options, summary, fresh)
                        waiting.pop(album.id)
                entry.item = entry.outcome = None  # free memory on long runs
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

    def _apply(
        self,
        item: Any,
        prediction: Any,
        outcome: LyricsOutcome,
        version: str,
        options: RunOptions,
        summary: Summary,
        stores: StoreBatch,
    ) -> dict[str, Any] | None:
        """Write one result to the file and queue it in ``stores``; None when the file could not
        be written, in which case the item is left exactly as it was, in the database and in
        the file."""
        try:
            values = fields.prediction_fields(prediction, outcome.label, version)
        except fields.NonFinitePrediction as error:
            # Nothing of a NaN result is kept: the item stays as it was and is not marked
            # current, so the next run analyses it again.
            summary.failed.append(_failure(item, str(error)))
            return None
        kept_mood = False
        if fields.has_user_mood(item):
            if options.force or options.overwrite_mood:
                self.log.info(
                    "{}: replacing mood {!r} set by hand with {!r}",
                    item.filepath,
                    fields.own_value(item, fields.MOOD),
                    values[fields.MOOD],
                )
            else:
                values.pop(fields.MOOD)
                kept_mood = True
        if options.pretend:
            summary.tagged += 1
            summary.lyrics[outcome.label] += 1
            summary.kept_mood += kept_mood
            self.printer(_describe(item, values, fields.own_value(item, fields.MOOD)))
            return values

        item.update(values)
        if options.defer_files and outcome.origin is not None:
            self.sidecar_origins[item.id] = outcome.origin
        if outcome.misses:
            item[fields.LYRICS_MISSES] = fields.format_misses(outcome.misses)
        elif fields.LYRICS_MISSES in item:
            del item[fields.LYRICS_MISSES]
        fetched = outcome.fetched
        sidecar = None
        if fetched is not None and fetched.synced:
            has_lyrics = bool((fields.own_value(item, "lyrics") or "").strip())
            if options.store_lyrics == "field" and not has_lyrics:
                item["lyrics"] = fetched.text
            elif options.store_lyrics == "lrc":
                if options.defer_files:
                    self.pending_sidecars[item.id] = fetched.text
                else:
                    sidecar = fetched.text
        # File first, then the database: a file that cannot be written leaves the item as it
        # was (it is retried on the next run). Ctrl-C is held back while the file is written,
        # and an interrupted run still stores the queued items (see store_batch).
        with defer_interrupts():
            written = options.write and not options.defer_files
            if written:
                try:
                    tags.write_tags(
                        item.path,
                        tags.values_to_write(item),
                        id3v23=options.id3v23,
                        mood_frame=options.id3_mood_frame,
                    )
                except tags.TagError as error:
                    item.load()  # drop the unsaved values
                    summary.failed.append(
                        _failure(item, f"{error}; nothing stored (-W stores without writing)")
                    )
                    return None
                item.mtime = item.current_mtime()
                summary.written += 1

            def stored() -> None:
                # Counted when stored: an interrupt must not leave a stored item out of the
                # summary, nor count one that is not.
                summary.tagged += 1
                summary.lyrics[outcome.label] += 1
                summary.kept_mood += kept_mood

            stores.add(item, stored, written=written)
        if sidecar is not None:
            write_sidecar(item, sidecar, self.log)
        return values

    def _write(self, item: Any, summary: Summary, options: RunOptions) -> None:
        with defer_interrupts():
            try:
                tags.write_tags(
                    item.path,
                    tags.values_to_write(item),
                    id3v23=options.id3v23,
                    mood_frame=options.id3_mood_frame,
                )
            except tags.TagError as error:
                summary.write_failed.append(str(error))
                self.log.warning("{}", error)
                return
            item.mtime = item.current_mtime()
            summary.written += 1
            try:
                commit(item._db, lambda: item.store(["mtime"]))
            except StoreFailed as error:
                error.pending = [Pending(item, lambda: None, written=True)]
                raise

    def _sync_file(self, item: Any, summary: Summary, options: RunOptions) -> None:
        """An item skipped as current still gets its tags written when its file lacks them."""
        values = tags.values_to_write(item)
        try:
            differ = tags.tags_differ(
                item.path, values, id3v23=options.id3v23, mood_frame=options.id3_mood_frame
            )
        except tags.TagError as error:
            summary.write_failed.append(str(error))
            return
        if differ:
            self._write(item, summary, options)

    # -- albums -------------------------------------------------------------------------------

    def _finish_album(
        self, album: Any, options: RunOptions, summary: Summary, fresh: dict[int, dict[str, Any]]
    ) -> None:
        wanted = (*fields.ALBUM_FLOAT_FIELDS.values(), fields.MODEL, "length")
        rows = []
        for track in album.items():
            row = {name: fields.own_value(track, name) for name in wanted}
            row.update({k: v for k, v in fresh.get(track.id, {}).items() if k in wanted})
            rows.append(row)
        values = fields.aggregate_album(rows)
        if values is None:
            return
        summary.albums += 1
        if options.pretend:
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
            commit(album._db, lambda: album.store(inherit=False))
        except StoreFailed:
            summary.albums -= 1
            raise


def _touched(albums: Sequence[Any], todo: Sequence[Any], known: set[int]) -> list[Any]:
    """The albums (not already in ``known``) with at least one track in ``todo``."""
    redone = {getattr(item, "album_id", None) for item in todo}
    return [album for album in albums if album.id in redone and album.id not in known]


@contextmanager
def _watch_interrupts() -> Iterator[Callable[[], bool]]:
    """Ctrl-C during a run raises KeyboardInterrupt at once, as usual, and is remembered too.

    Python drops an exception raised while a ``__del__`` method or a garbage-collector
    callback runs, so a Ctrl-C landing there would be lost; the run asks after each item.
    """
    seen: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        yield lambda: False  # someone else handles Ctrl-C: leave it to them
        return

    def handler(signum: int, frame: Any) -> None:
        seen.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(seen)
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def defer_interrupts() -> Iterator[None]:
    """Hold SIGINT (Ctrl-C) back until the block is done, then act on it.

    Around "write the file, store the item": a KeyboardInterrupt between the two, or inside
    mutagen's in-place rewrite of a file, would leave a half-updated item or a damaged file.
    Only the main thread can handle signals; elsewhere the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            if callable(previous):
                previous(signal.SIGINT, None)
            elif previous == signal.SIG_DFL:
                raise KeyboardInterrupt


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


def write_sidecar(item: Any, text: str, log: Any) -> bool:
    """Write ``song.lrc`` beside the file unless one exists already (never overwrite)."""
    from .lyrics_sources import sidecar_paths

    audio = Path(os.fsdecode(item.path))
    if any(path.exists() for path in sidecar_paths(audio)):
        return False
    target = sidecar_paths(audio)[0]
    try:
        with open(target, "x", encoding="utf-8") as out:
            out.write(text.rstrip("\n") + "\n")
    except FileExistsError:
        return False
    except OSError as error:
        log.warning("{}: cannot write lyrics ({})", target, error.strerror or error)
        return False
    return True


def label(model: Any) -> str:
    """How an item or album is named in messages: beets' format, or its path when untitled."""
    title = fields.own_value(model, "title" if hasattr(model, "title") else "album")
    if title:
        return str(model)
    path = getattr(model, "path", None)
    if path is None and hasattr(model, "item_dir"):
        path = model.item_dir()
    return os.fsdecode(path) if path else str(model)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _failure(item: Any, error: str) -> str:
    """One line that starts with the file's full path (the model may name only its base)."""
    path = os.fsdecode(item.path)
    reason = _one_line(error)
    for prefix in (path, Path(path).name, str(Path(path))):
        if reason.startswith(prefix + ":"):
            reason = reason[len(prefix) + 1 :].strip()
            break
    return f"{path}: {reason}"


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


def copy_sidecar(origin: Path, item: Any, log: Any) -> bool:
    """Copy the ``.lrc`` an import read beside the library file (never over an existing one)."""
    import shutil

    from .lyrics_sources import find_sidecar, sidecar_paths

    audio = Path(os.fsdecode(item.path))
    target = sidecar_paths(audio)[0]
    if find_sidecar(audio) is not None or not origin.is_file():
        return False  # already there (in-place import) or gone (moved by someone else)
    try:
        shutil.copyfile(origin, target)
    except OSError as error:
        log.warning("{}: cannot copy lyrics to {} ({})", origin, target, error.strerror or error)
        return False
    return True
