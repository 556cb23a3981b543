"""beets plugin ``emotion``: mood, valence and arousal from audio and lyrics with LGFN.

Enable it with ``plugins: emotion``; see docs/user-guide.md. Nothing here imports torch at
module load: ``beet ls`` stays fast, and the model loads on the first track that needs it.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, ClassVar

from beets import config as beets_config
from beets import ui
from beets.plugins import BeetsPlugin

from . import fields, tags
from .cli import build_command
from .model import ModelHandle, ModelUnavailable
from .personal import PersonalHeadUnusable
from .selection import albums_of, no_match, select_items
from .settings import DEFAULTS, Settings, SettingsError, id3_mood_frame, read_settings

if TYPE_CHECKING:
    import optparse

    from beets.dbcore import types
    from beets.importer import ImportSession, ImportTask
    from beets.library import Item, Library

    from .analysis import Analyzer, RunOptions
    from .import_state import DeferredFiles, ImportState
    from .progress import Summary


class EmotionPlugin(BeetsPlugin):
    item_types: ClassVar[dict[str, types.Type]] = fields.ITEM_TYPES  # type: ignore[misc]
    album_types: ClassVar[dict[str, types.Type]] = fields.ALBUM_TYPES  # type: ignore[misc]

    def __init__(self) -> None:
        super().__init__()
        self.config.add(DEFAULTS)
        self.config["genius_token"].redact = True
        tags.register_media_fields()
        self._analyzer: Analyzer | None = None
        self._import: ImportState | None = None
        """The import under way (from import_begin to its end), if any."""
        self.register_listener("write", self.on_write)
        self.register_listener("import_task_files", self.on_import_task_files)
        self.register_listener("import_begin", self.on_import_begin)
        self.register_listener("import", self.on_import_end)
        # A bad ``auto`` must not stop the plugin from loading (beets would then drop the
        # ``emotion`` command): the stage is added, and import_begin reports the bad value.
        auto = self.config["auto"].get()
        if auto is not False and str(auto).strip().lower() not in ("no", "false", "off"):
            self.import_stages = [self.imported]

    # -- configuration ------------------------------------------------------------------------

    def settings(self) -> Settings:
        """Every option, checked (one line naming a bad one: ``ui.UserError``)."""
        try:
            return read_settings(self.config)
        except SettingsError as error:
            raise ui.UserError(str(error)) from None

    def analyzer(self, printer: Any = ui.print_) -> Analyzer:
        """The plugin's analyser, built from the configuration on first use."""
        if self._analyzer is None:
            # Imported here: the lyrics sources pull in requests (about 100 ms), which
            # ``beet ls`` and every other command without analysis must not pay for.
            from .analysis import Analyzer
            from .lyrics_network import PROVIDERS
            from .lyrics_sources import LyricsFinder, LyricsSettings

            chosen = self.settings()
            lyrics = LyricsSettings(
                sources=list(chosen.lyrics_sources),
                providers=list(chosen.syncedlyrics_providers),
                genius_token=chosen.genius_token,
                timeout=chosen.lyrics_timeout,
                threads=chosen.lyrics_threads,
            )
            try:
                finder = LyricsFinder(lyrics, log=self._log)
            except ValueError as error:
                raise ui.UserError(
                    f"emotion: {error} (known providers: {', '.join(PROVIDERS)})"
                ) from None
            model = ModelHandle(
                chosen.checkpoint,
                device=chosen.device,
                batch_size=chosen.batch_size,
                workers=chosen.workers,
                precision=chosen.precision,
                threads=chosen.threads,
            )
            from .personal import PersonalModel

            self._analyzer = Analyzer(model, finder, self._log, personal=PersonalModel(model))
        self._analyzer.printer = printer
        return self._analyzer

    def _options(self, **overrides: Any) -> RunOptions:
        from .analysis import RunOptions

        chosen = self.settings()
        values: dict[str, Any] = {
            "force": chosen.force,
            "overwrite_mood": chosen.overwrite_mood,
            "store_lyrics": chosen.store_lyrics,
            "id3v23": id3v23(),
            "id3_mood_frame": chosen.id3_mood_frame,
            "progress": chosen.progress,
        }
        values.update(overrides)
        return RunOptions(**values)

    # -- the command --------------------------------------------------------------------------

    def commands(self) -> list[ui.Subcommand]:
        command = build_command()
        command.func = self.command
        return [command]

    def command(self, lib: Library, opts: optparse.Values, args: list[str]) -> None:
        if opts.learn:
            self.learn(lib, opts, args)
            return
        if opts.reset:
            raise ui.UserError("emotion: --reset goes with --learn (beet emotion --learn --reset)")
        if opts.explain:
            self.explain(lib, opts, args)
            return
        if opts.explain_out is not None or opts.explain_text:
            raise ui.UserError("emotion: --out and --text go with --explain")
        options = self._options(
            write=ui.should_write(opts.write),
            pretend=opts.pretend,
            progress=self.settings().progress and not opts.quiet,
        )
        options.force = options.force or opts.force
        summary = self._analyse(lib, opts, args, options)
        for line in summary.lines():
            ui.print_(line)
        if summary.store_error:  # the summary lists what was not stored; exit 1, one line
            raise ui.UserError(f"emotion: {summary.store_error}; run again when it can be written")
        if opts.playlist is not None:
            self.playlists(lib, opts, args)
        if summary.failed:  # exit 1, so that scripts and cron jobs can tell
            raise ui.UserError(f"emotion: {items_failed(len(summary.failed))} (listed above)")

    def _analyse(
        self, lib: Library, opts: optparse.Values, args: list[str], options: RunOptions
    ) -> Summary:
        """One run over the query, under the library lock; the summary so far on Ctrl-C."""
        chosen = select_items(lib, opts, args)
        items = chosen.items
        if not items:
            ui.print_(no_match(args, opts))
        # Tracks re-analysed without -a still refresh their album's aggregate.
        related = [] if opts.album else albums_of(lib, items)
        analyzer = self.analyzer(printer=ui.print_)
        from .library_lock import LibraryBusy

        try:
            with self._library_lock(lib, options, opts.wait):
                return analyzer.run(lib, items, options, chosen.albums, related)
        except LibraryBusy as error:
            raise ui.UserError(f"emotion: {error}") from None
        except ModelUnavailable as error:
            raise ui.UserError(f"emotion: cannot load the model: {error}") from None
        except PersonalHeadUnusable as error:
            raise ui.UserError(f"emotion: {error}") from None
        except KeyboardInterrupt:
            if analyzer.last_summary is not None:
                for line in analyzer.last_summary.lines():
                    ui.print_(line)
            raise

    def learn(self, lib: Library, opts: optparse.Values, args: list[str]) -> None:
        """``--learn [QUERY]``: fit the mood head to the moods set by hand; ``--reset``."""
        clashing = [
            name
            for name, given in (
                ("--explain", opts.explain),
                ("--playlist", opts.playlist is not None),
                ("-f/--force", opts.force),
            )
            if given
        ]
        if clashing:
            raise ui.UserError(f"emotion: --learn does not go with {', '.join(clashing)}")
        from .learning import Learner, LearningError
        from .library_lock import LibraryBusy

        options = self._options(
            write=ui.should_write(opts.write),
            pretend=opts.pretend,
            progress=self.settings().progress and not opts.quiet,
        )
        learner = Learner(self.analyzer(printer=ui.print_), ui.print_, self.settings().mood_words)
        try:
            with self._library_lock(lib, options, opts.wait):
                if opts.reset:
                    summary = learner.reset(lib, options)
                else:
                    summary = learner.learn(lib, select_items(lib, opts, args).items, options)
        except LibraryBusy as error:
            raise ui.UserError(f"emotion: {error}") from None
        except ModelUnavailable as error:
            raise ui.UserError(f"emotion: cannot load the model: {error}") from None
        except (LearningError, PersonalHeadUnusable) as error:
            raise ui.UserError(f"emotion: {error}") from None
        if summary is None:
            return
        for line in summary.lines():
            ui.print_(line)
        if summary.store_error:
            raise ui.UserError(f"emotion: {summary.store_error}; run again when it can be written")
        if summary.failed:
            raise ui.UserError(f"emotion: {items_failed(len(summary.failed))} (listed above)")

    def _library_lock(self, lib: Library, options: RunOptions, wait: bool) -> Any:
        """One storing run per library at a time (see library_lock); pretend runs need none."""
        if options.pretend:
            return contextlib.nullcontext()
        from . import library_lock

        return library_lock.hold(
            lib.path, wait=wait, on_wait=ui.print_, log=lambda text: self._log.warning("{}", text)
        )

    def explain(self, lib: Library, opts: optparse.Values, args: list[str]) -> None:
        """``--explain``: analyse the query again and draw it; store nothing."""
        from pathlib import Path

        from .explain import explain_items

        clashing = [
            name
            for name, given in (
                ("-w/--write", opts.write is True),
                ("-p/--pretend", opts.pretend),
                ("--playlist", opts.playlist is not None),
            )
            if given
        ]
        if clashing:
            raise ui.UserError(
                f"emotion: --explain stores and writes nothing; drop {', '.join(clashing)}"
            )
        chosen = select_items(lib, opts, args)
        items = chosen.items
        if not items:
            ui.print_(no_match(args, opts))
            return
        from lgfn_model.explain.writer import has_display

        text = opts.explain_text or not has_display()
        out = None
        if opts.explain_out is not None or not opts.explain_text:
            out = Path(opts.explain_out or ".").expanduser()
        try:
            result = explain_items(self.analyzer(), items, out, text, ui.print_, chosen.title(args))
        except ModelUnavailable as error:
            raise ui.UserError(f"emotion: cannot load the model: {error}") from None
        except OSError as error:
            target = error.filename or out
            raise ui.UserError(
                f"emotion: {target}: cannot write the pictures ({error.strerror or error})"
            ) from None
        done = len(result.tracks)
        ui.print_(f"emotion: explained {done}, failed {len(result.failed)}")
        for reason in result.failed:
            ui.print_(f"  failed: {reason}")
        for reason in result.lyrics_errors:
            ui.print_(f"  lyrics lookup: {reason}")
        if result.failed:
            raise ui.UserError(f"emotion: {items_failed(len(result.failed))} (listed above)")

    def playlists(self, lib: Library, opts: optparse.Values, args: list[str]) -> None:
        directory = opts.playlist or self.settings().playlist_dir
        from pathlib import Path

        target = Path(directory).expanduser()
        items = select_items(lib, opts, args).items
        if not items:
            # An empty match would blank every mood playlist the user has there.
            ui.print_(f"emotion: playlists in {target} left as they were (no tracks matched)")
            return
        relative = self.settings().playlist_relative
        from .playlists import build_playlists, render, write_playlist

        for playlist in build_playlists(items, target.resolve(), relative=relative):
            count = tracks(len(playlist.entries))
            if opts.pretend:
                ui.print_(f"emotion: would write {playlist.path} ({count})")
                ui.print_(render(playlist).rstrip("\n"))
                continue
            try:
                write_playlist(playlist)
            except OSError as error:
                raise ui.UserError(
                    f"emotion: {playlist.path}: cannot write playlist ({error.strerror or error})"
                ) from None
            ui.print_(f"emotion: wrote {playlist.path} ({count})")

    # -- files --------------------------------------------------------------------------------

    def on_write(self, item: Item, path: bytes, tags: dict[str, Any]) -> None:
        """Every write beets makes (``beet write``, ``modify``, the importer) carries our tags."""
        from . import tags as tag_module

        try:  # mediafile's mood descriptor puts the mood in the ID3 frame(s) chosen here
            tag_module.set_mood_frame(id3_mood_frame(self.config))
        except SettingsError as error:
            raise ui.UserError(str(error)) from None
        for name, value in tag_module.values_to_write(item).items():
            tags.setdefault(name, value)

    # -- import -------------------------------------------------------------------------------

    def on_import_begin(self, session: ImportSession) -> None:
        """A bad option stops the import before anything is imported or analysed."""
        if self.import_stages:
            self.settings()
        from .import_state import ImportState

        self._import = ImportState()

    def _import_state(self) -> ImportState:
        """The import under way; one is started if beets ran a stage without import_begin."""
        if self._import is None:
            from .import_state import ImportState

            self._import = ImportState()
        return self._import

    def on_import_end(self, lib: Library, paths: list[bytes]) -> None:
        """The import's summary, as ``beet emotion`` prints one: one line per failure too."""
        state, self._import = self._import, None
        if state is None or not state.summary.seen:
            return
        for line in state.summary.lines():
            ui.print_(line)

    def imported(self, session: ImportSession, task: ImportTask) -> None:
        """Import stage: analyse new items; files are written later, in the library."""
        state = self._import_state()
        if state.model_failed or task.skip:
            return
        items = list(task.imported_items())
        for item in items:
            self._adopt_file_tags(item)
        albums = [task.album] if getattr(task, "is_album", False) and task.album else []
        analyzer = self.analyzer(printer=self._log.info)
        # A progress line per album (tracks can take seconds each on a CPU); none when the
        # import is quiet (-q): the summary at the end says what happened.
        quiet = session.config["quiet"].get(bool)
        options = self._options(
            write=False, deferred=state.deferred, progress=self.settings().progress and not quiet
        )
        try:
            summary = analyzer.run(session.lib, items, options, albums)
        except ModelUnavailable as error:
            state.model_failed = True
            self._log.error("cannot load the model, no analysis during this import: {}", error)
            return
        except PersonalHeadUnusable as error:
            state.model_failed = True
            self._log.error("no analysis during this import: {}", error)
            return
        for reason in summary.failed:
            self._log.warning("{}", reason)
        for line in summary.lines():
            self._log.debug("{}", line.removeprefix("emotion: "))
        state.summary.merge(summary)

    def _adopt_file_tags(self, item: Item) -> None:
        """Values already in the file (from an earlier analysis, or a MOOD set elsewhere)
        become the item's, so a re-import is not re-analysed and a hand-set mood is kept."""
        try:
            found = tags.read_tags(item.path)
        except tags.TagError as error:
            self._log.debug("{}", error)
            return
        changed = False
        if found.get(fields.MODEL) and not fields.own_value(item, fields.MODEL):
            for name, value in found.items():
                if fields.own_value(item, name) in (None, ""):
                    item[name] = value
                    changed = True
        elif found.get(fields.MOOD) and not fields.own_value(item, fields.MOOD):
            item[fields.MOOD] = found[fields.MOOD]
            changed = True
        if changed:
            item.store()

    def on_import_task_files(self, session: ImportSession, task: ImportTask) -> None:
        """Files are in place (copied, moved or left where they were): write our tags there
        when the importer did not (as-is imports never write), and any pending sidecar."""
        write = session.config["write"].get(bool)
        for item in task.imported_items():
            if write and fields.own_value(item, fields.MODEL):
                self._write_imported(item)
            if self._import is not None:
                self._place_sidecar(item, self._import.deferred)

    def _write_imported(self, item: Item) -> None:
        values = tags.values_to_write(item)
        id3 = {"id3v23": id3v23(), "mood_frame": self.settings().id3_mood_frame}
        try:
            if tags.tags_differ(item.path, values, **id3):
                tags.write_tags(item.path, values, **id3)
                item.mtime = item.current_mtime()
                item.store(["mtime"])
        except tags.TagError as error:
            self._log.warning("{}", error)
            if self._import is not None:
                from .failures import WRITE, Failure

                self._import.summary.write_failed.append(Failure.from_tag_error(error, WRITE))

    def _place_sidecar(self, item: Item, deferred: DeferredFiles) -> None:
        """The ``.lrc`` the analysis left for ``item``, now that its file is in place."""
        text = deferred.sidecars.pop(item.id, None)
        if text is not None:
            from .sidecars import write_sidecar

            write_sidecar(item, text, self._log)
        origin = deferred.origins.pop(item.id, None)
        if origin is not None and self.settings().copy_lrc:
            from .sidecars import copy_sidecar

            copy_sidecar(origin, item, self._log)


def id3v23() -> bool:
    """beets' own ``id3v23`` option (ID3 v2.3 instead of v2.4 for every write)."""
    return beets_config["id3v23"].get(bool)


def tracks(count: int) -> str:
    return f"{count} track" if count == 1 else f"{count} tracks"


def items_failed(count: int) -> str:
    return "1 track failed" if count == 1 else f"{count} tracks failed"
