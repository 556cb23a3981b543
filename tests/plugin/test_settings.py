"""Every option is checked once, at start: a bad value is one line naming the option, the
value and what is allowed, before anything is analysed; the plugin always loads."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from beets import ui

from beetsplug.emotion import lyrics_network, lyrics_sources, settings

from .conftest import BeetsEnv
from .test_subprocess import BEET, _config

BAD_VALUES = [
    ("device", "gpu", "emotion: option device is 'gpu'; use auto, cpu, cuda or cuda:N"),
    ("auto", "perhaps", "emotion: option auto is 'perhaps'; use yes or no"),
    ("batch_size", -3, "emotion: option batch_size is -3; use a whole number from 1 to 4096"),
    ("batch_size", "many", "emotion: option batch_size is 'many'; use a whole number"),
    ("workers", -1, "emotion: option workers is -1; use auto or a whole number from 0 to 64"),
    ("lyrics_timeout", "soon", "emotion: option lyrics_timeout is 'soon'; use a number of sec"),
    ("lyrics_timeout", 0, "emotion: option lyrics_timeout is 0; use a number of seconds above"),
    ("lyrics_threads", 1000, "emotion: option lyrics_threads is 1000; use a whole number"),
    ("threads", 0, "emotion: option threads is 0; use auto or a whole number from 1 to 256"),
    ("threads", "all", "emotion: option threads is 'all'; use auto or a whole number from 1"),
    ("precision", "fp16", "emotion: option precision is 'fp16'; use one of auto, fp32, bf16"),
    ("store_lyrics", "disk", "emotion: option store_lyrics is 'disk'; use one of no, field"),
    ("lyrics_sources", ["lrc", "web"], "emotion: option lyrics_sources has unknown 'web'; "),
    ("syncedlyrics_providers", ["lyrix"], "emotion: option syncedlyrics_providers has unknown"),
    ("force", "maybe", "emotion: option force is 'maybe'; use yes or no"),
    ("progress", 3, "emotion: option progress is 3; use yes or no"),
]


@pytest.mark.parametrize(("name", "value", "message"), BAD_VALUES)
def test_bad_value_is_one_line_before_anything_runs(
    env: BeetsEnv, name: str, value: object, message: str
) -> None:
    env.add(env.make_track("one.flac", folder=env.music))
    env.restart(**{name: value})
    with pytest.raises(ui.UserError) as caught:
        env.run("emotion", "-w")
    text = str(caught.value)
    assert text.startswith(message), text
    assert "\n" not in text
    assert text.count(name) == 1  # the option is named once, not echoed back by confuse
    assert env.items()[0].get("emotion_model", with_album=False) is None


def test_unknown_checkpoint_names_the_choices(env: BeetsEnv) -> None:
    env.restart(checkpoint="fsat")
    with pytest.raises(ui.UserError) as caught:
        env.run("emotion")
    text = str(caught.value)
    assert text.startswith("emotion: option checkpoint is 'fsat'; no such model folder (")
    assert "use default, musicnn, fast (the shipped models) or a checkpoint folder" in text


def test_good_values_in_every_spelling(env: BeetsEnv, tiny_checkpoint: Path) -> None:
    env.restart(
        device="CPU",
        batch_size="8",
        workers="0",
        threads="1",
        lyrics_timeout="2.5",
        store_lyrics=False,
        lyrics_sources="lrc",
        auto="yes",
    )
    chosen = env.emotion.settings()
    assert chosen.device == "cpu" and chosen.batch_size == 8 and chosen.workers == 0
    assert chosen.threads == 1
    assert chosen.lyrics_timeout == 2.5 and chosen.store_lyrics == "no"
    assert chosen.lyrics_sources == ("lrc",) and chosen.auto is True
    assert chosen.checkpoint == str(tiny_checkpoint)
    env.add(env.make_track("one.flac", folder=env.music))
    assert "tagged 1" in env.run("emotion", "-W")
    predictor = env.emotion._analyzer.model.predictor()
    assert predictor.threads == 1 and predictor.threads_reason == "asked for"


def test_names_agree_with_the_modules_that_use_them() -> None:
    assert settings.LYRICS_SOURCE_NAMES == lyrics_sources.ALL_SOURCES
    assert settings.PROVIDER_NAMES == lyrics_network.PROVIDERS
    assert tuple(settings.DEFAULTS["lyrics_sources"]) == lyrics_sources.ALL_SOURCES
    from lgfn_model.model.config import PRECISIONS

    assert settings.PRECISIONS == PRECISIONS


def test_real_beet_with_a_bad_auto_still_has_the_command(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    environ = _config(tmp_path, tiny_checkpoint, auto="perhaps")
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    from audio_factory import make_audio_file

    make_audio_file(incoming / "a.flac", seconds=2.0)
    ran = subprocess.run(
        [str(BEET), "emotion"], env=environ, capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 1
    assert ran.stderr.strip() == "error: emotion: option auto is 'perhaps'; use yes or no"
    imported = subprocess.run(
        [str(BEET), "import", "-q", str(incoming)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert imported.returncode == 1
    assert "error: emotion: option auto is 'perhaps'; use yes or no" in imported.stderr
    assert "Traceback" not in imported.stderr
    listed = subprocess.run(
        [str(BEET), "ls"], env=environ, capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 0 and listed.stdout == ""  # nothing was imported
