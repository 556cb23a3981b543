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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

DEFAULTS: dict[str, Any] = {
    "auto": True,
    "force": False,
    "overwrite_mood": False,
    "checkpoint": "",
    "device": "auto",
    "batch_size": 16,
    "workers": "auto",
    "threads": "auto",
    "precision": "auto",
    "lyrics_sources": list(LYRICS_SOURCE_NAMES),
    "syncedlyrics_providers": ["lrclib", "musixmatch", "netease"],
    "genius_token": "",
    "lyrics_timeout": 10.0,
    "lyrics_threads": 4,
    "store_lyrics": "no",
    "copy_lrc": True,
    "playlist_dir": ".",
    "playlist_relative": False,
    "progress": True,
    "id3_mood_frame": "auto",
}

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


def read_settings(view: Any) -> Settings:
    """Every option of ``view`` (the plugin's confuse view), checked; raises SettingsError."""

    def get(name: str) -> Any:
        try:
            return view[name].get()
        except Exception as error:  # confuse.ConfigError: a YAML shape confuse refuses
            raise SettingsError(f"emotion: option {name}: {error}") from None

    def path_of(name: str) -> str:
        try:
            return str(view[name].as_filename())
        except Exception as error:
            raise SettingsError(f"emotion: option {name}: {error}") from None

    store = get("store_lyrics")
    if store in (False, None, ""):
        store = "no"  # YAML reads a bare ``no`` as false
    token = get("genius_token")
    playlist_dir = get("playlist_dir")
    if not isinstance(playlist_dir, str) or not playlist_dir.strip():
        raise _fail("playlist_dir", playlist_dir, "use a folder")
    return Settings(
        auto=_boolean("auto", get("auto")),
        force=_boolean("force", get("force")),
        overwrite_mood=_boolean("overwrite_mood", get("overwrite_mood")),
        checkpoint=_checkpoint(get("checkpoint"), lambda: path_of("checkpoint")),
        device=_device(get("device")),
        batch_size=_whole("batch_size", get("batch_size"), 1, MAX_BATCH),
        workers=_workers(get("workers")),
        threads=_threads(get("threads")),
        precision=_choice("precision", get("precision") or "auto", PRECISIONS),
        lyrics_sources=_names("lyrics_sources", get("lyrics_sources"), LYRICS_SOURCE_NAMES),
        syncedlyrics_providers=_names(
            "syncedlyrics_providers", get("syncedlyrics_providers"), PROVIDER_NAMES
        ),
        genius_token="" if token in (None, False) else str(token),
        lyrics_timeout=_seconds("lyrics_timeout", get("lyrics_timeout"), MAX_LYRICS_TIMEOUT),
        lyrics_threads=_whole("lyrics_threads", get("lyrics_threads"), 0, MAX_LYRICS_THREADS),
        store_lyrics=_choice("store_lyrics", store, STORE_LYRICS_CHOICES),
        copy_lrc=_boolean("copy_lrc", get("copy_lrc")),
        playlist_dir=path_of("playlist_dir"),
        playlist_relative=_boolean("playlist_relative", get("playlist_relative")),
        progress=_boolean("progress", get("progress")),
        id3_mood_frame=id3_mood_frame(view),
    )


def id3_mood_frame(view: Any) -> str:
    """The ``id3_mood_frame`` option alone, checked (every write beets makes reads it)."""
    try:
        value = view["id3_mood_frame"].get()
    except Exception as error:
        raise SettingsError(f"emotion: option id3_mood_frame: {error}") from None
    return _choice("id3_mood_frame", value, ID3_MOOD_FRAMES)
