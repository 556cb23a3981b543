"""The model behind the plugin, loaded lazily and once per process.

Importing this module imports no torch: the model version is read from the checkpoint's
``config.json`` by ``lgfn_model.runtime.checkpoint_files`` (torch-free), so already-analysed items
are skipped without loading anything, and the
``Predictor`` is only built when a track actually needs analysing. Loaded predictors are
kept per process, so an import session or a test run pays for loading once.
"""

from __future__ import annotations

import threading
from contextlib import suppress
from typing import Any

from .settings import DEFAULTS

_CACHE: dict[tuple[Any, ...], Any] = {}
_LOCK = threading.Lock()


class ModelUnavailable(Exception):
    """The model cannot be loaded; the message is one line saying why and what to do."""


class ModelHandle:
    """What the plugin knows about its model before (and after) loading it."""

    def __init__(
        self,
        checkpoint: str | None = None,
        device: str = "auto",
        batch_size: int = DEFAULTS["batch_size"],
        workers: int | None = None,
        precision: str = "auto",
        threads: int | None = None,
    ) -> None:
        # A path, or the name of a model shipped in the package ("musicnn"); None: the default.
        self.checkpoint = checkpoint or None
        self.device = device
        self.batch_size = batch_size
        self.workers = workers
        self.precision = precision
        self.threads = threads
        self._version: str | None = None

    def version(self) -> str:
        """The model version, from config.json when readable, else by loading the model."""
        if self._version is None:
            self._version = self._read_version() or self.predictor().version
        return self._version

    def _read_version(self) -> str | None:
        from lgfn_model.runtime.checkpoint_files import checkpoint_version

        try:
            return checkpoint_version(self.checkpoint)
        # CheckpointError, or anything else (a path that cannot be looked at): loading the
        # model will say what is wrong, in one line.
        except Exception:
            return None

    def _key(self) -> tuple[Any, ...]:
        from lgfn_model.runtime.checkpoint_files import resolve_checkpoint

        directory = resolve_checkpoint(self.checkpoint)
        with suppress(OSError, RuntimeError):  # a symlink loop: loading will report it
            directory = directory.resolve()
        try:
            stamp = (directory / "model.safetensors").stat().st_mtime_ns
        except OSError:
            stamp = None
        return (
            str(directory),
            stamp,
            self.device,
            self.batch_size,
            self.workers,
            self.precision,
            self.threads,
        )

    def predictor(self) -> Any:
        """The loaded ``lgfn_model.runtime.predictor.Predictor`` (imports torch on first call)."""
        key = self._key()
        with _LOCK:
            cached = _CACHE.get(key)
            if cached is not None:
                return cached
            from lgfn_model.runtime.checkpoint_files import CheckpointError, check_checkpoint_config

            try:
                # Torch-free: an impossible config is refused before torch is even imported.
                check_checkpoint_config(self.checkpoint)
            except CheckpointError as error:
                raise ModelUnavailable(" ".join(str(error).split())) from None
            except Exception:
                pass  # loading below says what is wrong, through the same handlers
            try:
                from lgfn_model.runtime.device import DeviceError
                from lgfn_model.runtime.predictor import Predictor
            except ImportError as error:
                raise ModelUnavailable(f"cannot import the model ({error})") from None
            try:
                predictor = Predictor.load(
                    self.checkpoint,
                    device=self.device,
                    batch_size=self.batch_size,
                    workers=self.workers,
                    precision=self.precision,
                    threads=self.threads,
                )
            except (CheckpointError, DeviceError) as error:
                raise ModelUnavailable(" ".join(str(error).split())) from None
            except Exception as error:
                # The last line of defence: whatever a bad checkpoint makes go wrong that the
                # checks in lgfn_model did not foresee (MemoryError included) is one line, never
                # a traceback in the user's terminal; the traceback is kept for `beet -vv`.
                from beets import logging as beets_logging

                beets_logging.getLogger("beets.emotion").debug(
                    "emotion: loading the model failed", exc_info=True
                )
                reason = " ".join(str(error).split()) or "no message"
                if len(reason) > 300:
                    reason = reason[:297] + "..."
                where = self.checkpoint or "the shipped model"
                raise ModelUnavailable(
                    f"{where}: unexpected {type(error).__name__} while loading ({reason})"
                ) from None
            _CACHE[key] = predictor
        if self._version is not None and predictor.version != self._version:
            self._version = predictor.version
        return predictor


def forget_loaded_models() -> None:
    """Drop cached predictors (tests; long-lived processes after a config change)."""
    with _LOCK:
        _CACHE.clear()
