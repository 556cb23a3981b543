"""The plugin's options: one table of defaults, every value checked once, at start.

A bad value is one line naming the option, the value and what is allowed
(``emotion: option batch_size is -3; use a whole number from 1 to 4096``), raised before
anything is analysed, instead of a traceback from deep inside a run, or a plugin that fails
to load (a non-boolean ``auto`` used to make beets drop the ``emotion`` command).
Nothing here imports torch or the network code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import confuse

# Kept here rather than imported from lyrics_network/lyrics_sources: those pull in requests,
# and reading the settings must stay cheap (beet ls loads the plugin). A test checks they
# agree with the modules that use them.
LYRICS_SOURCE_NAMES: tuple[str, ...] = ("beets", "lrc", "embedded", "syncedlyrics", "genius")
PROVIDER_NAMES: tuple[str, ...] = ("lrclib", "musixmatch", "netease", "megalobiz")
STORE_LYRICS_CHOICES: tuple[str, ...] = ("no", "field", "lrc")
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")
"""As lgfn_model.model.config.PRECISIONS (a test checks): that module costs a few ms to import."""
ID3_MOOD_FRAMES: tuple[str, ...] = ("auto", "tmoo", "txxx", "both")
"""Where ID3 files get the mood: ``auto`` TMOO in v2.4, TXXX:MOOD in v2.3 (see tags)."""
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d{1,2})?")


MAX_BATCH = 4096
MAX_WORKERS = 64
MAX_LYRICS_THREADS = 32
MAX_LYRICS_TIMEOUT = 600.0


class SettingsError(Exception):
    """An option with a value the plugin cannot use; the message is one line."""


@dataclass(frozen=True)
class Settings:
    auto: bool
    force: bool
    overwrite_mood: bool
    checkpoint: str | None
    """A shipped model's name, a checkpoint folder (absolute), or None for the default."""
    device: str
    batch_size: int
    workers: int | None
    """None: automatic."""
    threads: int | None
    """CPU threads for the model; None: automatic (lgfn_model.runtime.threads)."""
    precision: str
    lyrics_sources: tuple[str, ...]
    syncedlyrics_providers: tuple[str, ...]
    genius_token: str
    lyrics_timeout: float
    lyrics_threads: int
    store_lyrics: str
    copy_lrc: bool
    playlist_dir: str
    playlist_relative: bool
    progress: bool
    id3_mood_frame: str = "auto"
    mood_words: dict[str, str] = field(default_factory=dict)
    """Words of hand-set moods -> the four, over mood_words.SYNONYMS (``--learn``)."""


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _fail(name: str, value: Any, allowed: str) -> SettingsError:
    return SettingsError(f"emotion: option {name} is {_shown(value)}; {allowed}")


def _boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("yes", "true", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("no", "false", "off"):
        return False
    raise _fail(name, value, "use yes or no")


def _whole(name: str, value: Any, low: int, high: int) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        number = int(value)
    if number is None or not low <= number <= high:
        raise _fail(name, value, f"use a whole number from {low} to {high}")
    return number


def _seconds(name: str, value: Any, high: float) -> float:
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or not 0 < number <= high:  # also refuses NaN
        raise _fail(name, value, f"use a number of seconds above 0, at most {high:g}")
    return number


def _choice(name: str, value: Any, choices: Sequence[str]) -> str:
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text not in choices:
        raise _fail(name, value, "use one of " + ", ".join(choices))
    return text


def _names(name: str, value: Any, choices: Sequence[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]  # ``lyrics_sources: lrc`` means the one source
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(name, value, "use a list of " + ", ".join(choices))
    found = tuple(v.strip().lower() for v in value)
    unknown = [v for v in found if v not in choices]
    if unknown:
        raise SettingsError(
            f"emotion: option {name} has unknown {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(choices)}"
        )
    return found


def _device(value: Any) -> str:
    text = str(value).strip().lower() if isinstance(value, str) else ""
    if not DEVICE_PATTERN.fullmatch(text):
        raise _fail("device", value, "use auto, cpu, cuda or cuda:N (N the GPU's number)")
    return text


def _workers(value: Any) -> int | None:
    if value in (None, "") or (isinstance(value, str) and value.strip().lower() == "auto"):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_WORKERS:
        return value
    if isinstance(value, str) and value.strip().isdigit() and int(value) <= MAX_WORKERS:
        return int(value)
    raise _fail("workers", value, f"use auto or a whole number from 0 to {MAX_WORKERS}")


def _threads(value: Any) -> int | None:
    # lgfn_model.runtime.threads is torch-free and imports only the standard library.
    from lgfn_model.runtime.threads import ALLOWED, ThreadsError, parse_threads

    try:
        return parse_threads(value)
    except ThreadsError:
        raise _fail("threads", value, ALLOWED) from None


def _checkpoint(value: Any, as_path: Callable[[], str]) -> str | None:
    if value in (None, ""):
        return None
    from lgfn_model.runtime.checkpoint_files import SHIPPED_MODELS

    if not isinstance(value, str):
        raise _fail("checkpoint", value, "use " + ", ".join(SHIPPED_MODELS) + " or a folder")
    chosen = value.strip()
    if chosen in SHIPPED_MODELS and not Path(chosen).expanduser().exists():
        return chosen  # a model inside the package, by name
    # Relative paths are relative to the config file's folder, as everywhere in beets.
    folder = Path(as_path()).expanduser()
    if not folder.is_dir():
        raise _fail(
            "checkpoint",
            value,
            f"no such model folder ({folder}); use "
            + ", ".join(SHIPPED_MODELS)
            + " (the shipped models) or a checkpoint folder",
        )
    return str(folder)


class Option(confuse.Template):
    """One option: its default and its check, read through confuse (``view.get(option)``).

    The check raises ``SettingsError`` with the plugin's one-line message; confuse's own
    messages (``emotion.batch_size: must be a number``) would name the option twice and not
    say what is allowed.
    """

    def __init__(self, default: Any, check: Callable[[str, Any, Any], Any]) -> None:
        super().__init__(default)
        self.check = check

    def value(self, view: Any, template: Any = None) -> Any:
        # Unlike confuse's templates, the default goes through the check too: ``workers:
        # auto`` means None whether the user wrote it or left it out.
        try:
            found, _ = view.first()
        except confuse.NotFoundError:
            found = self.default
        return self.check(str(view.key), found, view)


def _plain(check: Callable[[str, Any], Any]) -> Callable[[str, Any, Any], Any]:
    return lambda name, value, view: check(name, value)


def _whole_from(low: int, high: int) -> Callable[[str, Any, Any], Any]:
    return lambda name, value, view: _whole(name, value, low, high)


def _choice_of(choices: Sequence[str]) -> Callable[[str, Any, Any], Any]:
    return lambda name, value, view: _choice(name, value, choices)


def _names_of(choices: Sequence[str]) -> Callable[[str, Any, Any], Any]:
    return lambda name, value, view: _names(name, value, choices)


def _path_of(view: Any, default: str) -> str:
    """The option as a path, relative to the config file's folder, as everywhere in beets."""
    try:
        return str(confuse.Filename(default=default).value(view))
    except confuse.ConfigError as error:
        raise SettingsError(f"emotion: option {view.key}: {error}") from None


def _store_lyrics(name: str, value: Any) -> str:
    if value in (False, None, ""):
        value = "no"  # YAML reads a bare ``no`` as false
    return _choice(name, value, STORE_LYRICS_CHOICES)


def _token(name: str, value: Any) -> str:
    return "" if value in (None, False) else str(value)


def _folder(name: str, value: Any, view: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(name, value, "use a folder")
    return _path_of(view, value)


MOOD_NAMES: tuple[str, ...] = ("happy", "angry", "sad", "relaxed")
"""As fields.MOODS (a test checks): fields imports beets' types, settings must stay light."""


def _mood_words(name: str, value: Any) -> dict[str, str]:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise _fail(name, value, "use a mapping of words to moods, e.g. {epic: happy}")
    table: dict[str, str] = {}
    for word, mood in value.items():
        chosen = str(mood).strip().lower() if isinstance(mood, str) else None
        if chosen not in MOOD_NAMES or not str(word).strip():
            raise SettingsError(
                f"emotion: option {name} maps {_shown(word)} to {_shown(mood)}; "
                f"map words to {', '.join(MOOD_NAMES)}"
            )
        table[str(word)] = chosen
    return table


OPTIONS: dict[str, Option] = {
    "auto": Option(True, _plain(_boolean)),
    "force": Option(False, _plain(_boolean)),
    "overwrite_mood": Option(False, _plain(_boolean)),
    "checkpoint": Option(
        "", lambda name, value, view: _checkpoint(value, lambda: _path_of(view, value))
    ),
    "device": Option("auto", lambda name, value, view: _device(value)),
    # The one batch size default (docs/user-guide.md): lgfn_model's Predictor has its own for
    # callers that give none, but the plugin always passes this one.
    "batch_size": Option(16, _whole_from(1, MAX_BATCH)),
    "workers": Option("auto", lambda name, value, view: _workers(value)),
    "threads": Option("auto", lambda name, value, view: _threads(value)),
    "precision": Option(
        "auto", lambda name, value, view: _choice(name, value or "auto", PRECISIONS)
    ),
    "lyrics_sources": Option(list(LYRICS_SOURCE_NAMES), _names_of(LYRICS_SOURCE_NAMES)),
    "syncedlyrics_providers": Option(
        ["lrclib", "musixmatch", "netease"], _names_of(PROVIDER_NAMES)
    ),
    "genius_token": Option("", _plain(_token)),
    "lyrics_timeout": Option(
        10.0, lambda name, value, view: _seconds(name, value, MAX_LYRICS_TIMEOUT)
    ),
    "lyrics_threads": Option(4, _whole_from(0, MAX_LYRICS_THREADS)),
    "store_lyrics": Option("no", _plain(_store_lyrics)),
    "copy_lrc": Option(True, _plain(_boolean)),
    "playlist_dir": Option(".", _folder),
    "playlist_relative": Option(False, _plain(_boolean)),
    "progress": Option(True, _plain(_boolean)),
    "id3_mood_frame": Option("auto", _choice_of(ID3_MOOD_FRAMES)),
    "mood_words": Option({}, _plain(_mood_words)),
}
"""Every option: its default (``DEFAULTS``, what a fresh config holds) and its check."""

DEFAULTS: dict[str, Any] = {name: option.default for name, option in OPTIONS.items()}


def read_option(view: Any, name: str) -> Any:
    """One option of ``view`` (the plugin's confuse view), checked; raises SettingsError."""
    try:
        return view[name].get(OPTIONS[name])
    except confuse.ConfigError as error:  # a YAML shape confuse refuses
        raise SettingsError(f"emotion: option {name}: {error}") from None


def read_settings(view: Any) -> Settings:
    """Every option of ``view`` (the plugin's confuse view), checked; raises SettingsError."""
    return Settings(**{name: read_option(view, name) for name in OPTIONS})


def id3_mood_frame(view: Any) -> str:
    """The ``id3_mood_frame`` option alone, checked (every write beets makes reads it)."""
    return read_option(view, "id3_mood_frame")
