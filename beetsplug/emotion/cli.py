"""``beet emotion``: its options, parsed the beets way."""

from __future__ import annotations

import optparse
import os
from typing import Any

from beets import ui

USAGE = "%prog [options] [QUERY]"


def _looks_like_directory(arg: str) -> bool:
    """Whether the word after ``--playlist`` is its directory rather than a query term.

    Query terms with a field (``mood:sad``) or an option never are; an existing directory,
    or anything written as a path (``./lists``, ``~/lists``, ``lists/``), is.
    """
    if not arg or arg.startswith("-") or ":" in arg:
        return False
    if os.path.isdir(os.path.expanduser(arg)):
        return True
    return arg.startswith((".", "~", os.sep)) or os.sep in arg


def _playlist_option(
    option: optparse.Option, opt: str, value: Any, parser: optparse.OptionParser
) -> None:
    directory = ""
    if parser.rargs and _looks_like_directory(parser.rargs[0]):
        directory = parser.rargs.pop(0)
    parser.values.playlist = directory


class _ValuelessCallbackOption(optparse.Option):
    """beets makes every callback option take a value; this one reads its own (optional)."""

    ALWAYS_TYPED_ACTIONS = ("store", "append")


class _HelpFormatter(optparse.IndentedHelpFormatter):
    """Shows ``--playlist [DIR]``: optparse names a value only for options that require one."""

    def format_option_strings(self, option: optparse.Option) -> str:
        text = super().format_option_strings(option)
        if isinstance(option, _ValuelessCallbackOption):
            text += " [DIR]"
        return text


class EmotionParser(ui.CommonOptionsParser):
    """Adds ``--playlist=DIR`` to optparse (an option whose value is optional)."""

    def _process_long_opt(self, rargs: list[str], values: optparse.Values) -> None:
        arg = rargs[0]
        if arg.startswith("--playlist="):
            rargs.pop(0)
            values.playlist = arg.split("=", 1)[1]
            return
        super()._process_long_opt(rargs, values)


def build_command() -> ui.Subcommand:
    parser = EmotionParser(usage=USAGE, formatter=_HelpFormatter())
    command = ui.Subcommand(
        "emotion",
        parser=parser,
        help="tag mood, valence and arousal from audio and lyrics (LGFN)",
    )
    add = parser.add_option
    add(
        "-a",
        "--album",
        action="store_true",
        default=False,
        help="match albums: analyse their tracks and store album_mood on each album",
    )
    add(
        "-f",
        "--force",
        action="store_true",
        default=False,
        help="re-analyse items already analysed by this model; replace moods set by hand",
    )
    add(
        "-w",
        "--write",
        dest="write",
        action="store_true",
        default=None,
        help="write tags to files (default: import.write)",
    )
    add("-W", "--nowrite", dest="write", action="store_false", help="do not write tags to files")
    add(
        "-p",
        "--pretend",
        action="store_true",
        default=False,
        help="show what would be stored; change nothing",
    )
    add(
        _ValuelessCallbackOption(
            "--playlist",
            action="callback",
            callback=_playlist_option,
            help="also write happy.m3u, angry.m3u, sad.m3u and relaxed.m3u for the query "
            "into DIR (--playlist DIR, --playlist=DIR; default: the playlist_dir option)",
        )
    )
    parser.set_defaults(playlist=None)
    add("-q", "--quiet", action="store_true", default=False, help="no progress line")
    add(
        "--wait",
        action="store_true",
        default=False,
        help="when another beet emotion is analysing this library, wait for it to finish "
        "(default: stop with a message)",
    )
    add(
        "--learn",
        action="store_true",
        default=False,
        help="learn your sense of mood from the moods you set by hand (on the tracks of "
        "QUERY; default: the whole library), then re-tag the library from stored "
        "embeddings; with -p: show what it would change",
    )
    add(
        "--reset",
        action="store_true",
        default=False,
        help="with --learn: forget what was learned; back to the shipped model's moods",
    )
    add(
        "--explain",
        action="store_true",
        default=False,
        help="draw why each matching track got its mood (PNG + HTML per track, and an "
        "overview on the valence-arousal plane); stores nothing",
    )
    add(
        "--out",
        dest="explain_out",
        metavar="DIR",
        default=None,
        help="with --explain: where to write the pictures (default: the current folder)",
    )
    add(
        "--text",
        dest="explain_text",
        action="store_true",
        default=False,
        help="with --explain: print a text explanation (files only with --out)",
    )
    return command
