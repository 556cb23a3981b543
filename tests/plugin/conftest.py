"""A real beets library in a temp dir, the emotion plugin loaded, the real CLI in-process.

The model is a tiny random-weight LGFN checkpoint written once per session; the plugin's
per-process model cache means it (and the lyrics encoder) loads once for the whole run.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any, ClassVar

import pytest

TESTS_DIR = Path(__file__).resolve().parents[1]
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

import beets  # noqa: E402
import beets.plugins  # noqa: E402
import beets.ui  # noqa: E402
from audio_factory import make_audio_file  # noqa: E402
from beets.library import Item  # noqa: E402
from beets.test.helper import PluginMixin, TestHelper  # noqa: E402
from beets.util import cached_classproperty  # noqa: E402
from mediafile import MediaFile  # noqa: E402

TEST_MODEL_VERSION = "lgfn-test-tiny"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lgfn_model.testing import write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("checkpoint"), seed=0)


@pytest.fixture(scope="session")
def other_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second model version, for "a new model re-analyses" tests."""
    from lgfn_model.testing import write_tiny_checkpoint

    return write_tiny_checkpoint(
        tmp_path_factory.mktemp("checkpoint2"), seed=1, version="lgfn-test-v2"
    )


class BeetsEnv(PluginMixin, TestHelper):
    """One isolated beets setup: config, library on disk, music folder, input folder.

    Built on beets' own test helpers (fresh config, environment, library, plugin loading);
    what is added here: the library on disk in pytest's ``tmp_path`` (the plugin's lock file
    sits beside it, and ``beet`` subprocesses and a second connection read it), the plugin's
    test options, and clearing beets' ``cached_classproperty`` cache (beets' own conftest
    does that per test, and it holds the item types the plugin adds).
    """

    plugin: ClassVar[str] = "emotion"
    db_on_disk: ClassVar[bool] = True

    def __init__(self, root: Path, checkpoint: Path) -> None:
        self.root = root
        self.incoming = root / "incoming"
        self.incoming.mkdir()
        self.music = root / "music"
        self.music.mkdir()
        self.checkpoint = checkpoint
        self.last_output = ""

    def create_temp_dir(self, **kwargs: Any) -> str:
        return str(self.root)

    def remove_temp_dir(self) -> None:
        """pytest removes ``tmp_path`` itself (and keeps the last ones for a look)."""

    @property
    def lib_path(self) -> Path:  # type: ignore[override]
        return self.music

    def setup_beets(self) -> None:
        config = self.config  # a fresh baseline, as beets' tests have it
        config["verbose"] = 0
        config["library"] = str(self.root / "library.db")
        config["import"].set(
            {"write": True, "copy": True, "quiet": True, "quiet_fallback": "asis", "log": None}
        )
        config["emotion"].set(
            {
                "checkpoint": str(self.checkpoint),
                "workers": 0,
                "lyrics_sources": ["beets", "lrc", "embedded"],
                "lyrics_threads": 2,
                "lyrics_timeout": 2.0,
            }
        )
        super().setup_beets()
        cached_classproperty.cache.clear()

    def teardown_beets(self) -> None:
        super().teardown_beets()
        cached_classproperty.cache.clear()

    def configure(self, **options: Any) -> None:
        for key, value in options.items():
            self.config["emotion"][key] = value

    def start(self) -> BeetsEnv:
        self.setup_beets()
        return self

    def restart(self, **options: Any) -> None:
        """Reload the plugin with new options (a new beets process would do the same)."""
        self.unload_plugins()
        self.configure(**options)
        self.load_plugins()
        cached_classproperty.cache.clear()

    @property
    def emotion(self) -> Any:
        """The loaded emotion plugin."""
        return next(p for p in beets.plugins.find_plugins() if p.name == "emotion")

    def run(self, *args: str) -> str:
        """``beet ARGS`` in-process; returns what it printed on stdout."""
        out = io.StringIO()
        try:
            with redirect_stdout(out):
                self.run_command(*args)
        finally:
            self.last_output = out.getvalue()  # also when the command raised
        return self.last_output

    def run_failing(self, *args: str) -> str:
        """``beet ARGS`` where some items fail: the summary, then exit 1 (a UserError naming
        how many failed); returns what it printed."""
        with pytest.raises(beets.ui.UserError, match=r"tracks? failed \(listed above\)$"):
            self.run(*args)
        return self.last_output

    def make_track(
        self,
        name: str,
        title: str = "",
        artist: str = "Test Artist",
        album: str = "Test Album",
        track: int = 1,
        seconds: float = 3.0,
        kind: str = "tone",
        lrc: str | None = None,
        folder: Path | None = None,
        **tags: Any,
    ) -> Path:
        """An audio file with real tags (format from the name's extension) in ``incoming``."""
        folder = folder or self.incoming
        folder.mkdir(parents=True, exist_ok=True)
        path = make_audio_file(folder / name, seconds=seconds, kind=kind)
        media = MediaFile(str(path))
        media.update(
            {
                "title": title or Path(name).stem,
                "artist": artist,
                "album": album,
                "track": track,
                **tags,
            }
        )
        media.save()
        if lrc is not None:
            path.with_suffix(".lrc").write_text(lrc, encoding="utf-8")
        return path

    def add(self, *paths: Path, album: bool = False) -> list[Item]:
        """Put files in the library where they are (no import, no copy)."""
        assert self.lib is not None
        items = [Item.from_path(str(path)) for path in paths]
        if album:
            self.lib.add_album(items)
        else:
            for item in items:
                self.lib.add(item)
        return items

    def items(self, query: str = "") -> list[Item]:
        assert self.lib is not None
        return list(self.lib.items(query))

    def close(self) -> None:
        self.teardown_beets()


@pytest.fixture
def env(
    tmp_path: Path, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[BeetsEnv]:
    monkeypatch.chdir(tmp_path)
    setup = BeetsEnv(tmp_path, tiny_checkpoint)
    setup.start()
    try:
        yield setup
    finally:
        setup.close()


def file_bytes(path: Path) -> bytes:
    return Path(os.fsdecode(path)).read_bytes()
