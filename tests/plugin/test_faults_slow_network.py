"""Fault suite, a network that is there but slow: a real server on 127.0.0.1 that sends one
byte every half second, for ever, reached as the target itself or as HTTPS_PROXY (which
requests honours for every provider, inside syncedlyrics and lyricsgenius too).

A read timeout bounds each socket read, and every read here gets its byte in time; what must
hold is the lookup's whole budget (``lyrics_timeout``), reads included, and Ctrl-C must end
a ``beet emotion`` stuck in such a lookup within seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from beets.library import Item

from beetsplug.emotion.lyrics_network import GuardedSession, LyricsLookupError
from beetsplug.emotion.lyrics_sources import LyricsFinder, LyricsSettings
from beetsplug.emotion.parallel import ordered_map
from tools import fault_catalogue as catalogue

TOKEN = "genius-SECRET-drip-91b0"
BUDGET = 2.0
SLACK = 1.5
"""Seconds allowed past the budget: the watchdog's timer, thread switches, a loaded CPU."""


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (*catalogue.PROXY_VARIABLES, "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.0 200 OK\r\n\r\n",
    ],
    ids=["headers", "body-with-length", "chunked-body", "body-to-eof"],
)
def test_a_dripping_answer_is_cut_at_the_deadline(no_proxy_env: object, head: bytes) -> None:
    with catalogue.drip_server(0.5, head=head) as drip:
        session = GuardedSession(BUDGET)
        session.start()
        started = time.monotonic()
        with pytest.raises(LyricsLookupError, match="timed out"):
            session.get(f"{drip.url}/search")
        took = time.monotonic() - started
        assert drip.connections == 1
    assert BUDGET - 0.1 < took < BUDGET + SLACK


def test_every_provider_through_a_dripping_proxy_is_bounded(
    no_proxy_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = LyricsSettings(
        sources=["syncedlyrics", "genius"],
        providers=["lrclib", "musixmatch", "netease"],
        genius_token=TOKEN,
        timeout=BUDGET,
    )
    items = [
        Item(path=str(tmp_path / f"{n}.mp3"), title=f"Song {n}", artist="Band") for n in range(4)
    ]
    with catalogue.drip_server(0.5) as drip:
        for name in catalogue.PROXY_VARIABLES:
            no_proxy_env.setenv(name, drip.url)
        finder = LyricsFinder(settings)
        started = time.monotonic()
        # Three lookups at once: each source fails three times, then it is switched off.
        outcomes = list(ordered_map(finder.find, items[:3], threads=3))
        took = time.monotonic() - started
        assert drip.connections >= 6  # every lookup really went through the proxy
        started = time.monotonic()
        after = finder.find(items[3])
        assert time.monotonic() - started < 0.5  # switched off: not asked again
    # Both sources one after the other, each within its own budget.
    assert took < 2 * BUDGET + SLACK
    for outcome in outcomes:
        assert outcome.lyrics is None and outcome.misses == set()
        assert any("syncedlyrics: lrclib: timed out" in e for e in outcome.errors)
        assert any("genius: timed out" in e for e in outcome.errors)
        assert all(TOKEN not in e for e in outcome.errors)
    assert after.lyrics is None and after.errors == []
    assert set(finder.network.disabled_reasons) == {
        "syncedlyrics:lrclib",
        "syncedlyrics:musixmatch",
        "syncedlyrics:netease",
        "genius",
    }


def _scratch(root: Path, checkpoint: Path, tracks: int, timeout: float) -> catalogue.Scratch:
    scratch = catalogue.ProxiedScratch(
        root,
        checkpoint,
        lyrics_sources=["lrc", "syncedlyrics", "genius"],
        syncedlyrics_providers=["lrclib", "musixmatch", "netease"],
        genius_token=TOKEN,
        lyrics_timeout=timeout,
        lyrics_threads=4,
        workers=0,
    )
    for n in range(tracks):
        name = f"s{n}.flac"
        scratch.add(name, catalogue.synth(scratch.music / name, seconds=3, title=f"Song {n}"))
    scratch.snapshot()
    return scratch


def test_beet_emotion_through_a_dripping_proxy(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """A real ``beet emotion -w``: every track tagged (no lyrics), and the drip costs about
    one budget per source (one wave of four lookups switches both sources off)."""
    scratch = _scratch(tmp_path, tiny_checkpoint, tracks=6, timeout=BUDGET)
    assert isinstance(scratch, catalogue.ProxiedScratch)
    scratch.write_config(lyrics_sources=["lrc"])
    baseline = scratch.beet("emotion", "-w")
    assert baseline.returncode == 0, baseline.output[-2000:]
    scratch.write_config()
    with catalogue.drip_server(0.5) as drip:
        scratch.proxy = drip.url
        result = scratch.beet("emotion", "-w", "-f")
        assert drip.connections >= 4
    assert result.returncode == 0, result.output[-2000:]
    assert "emotion: tagged 6" in result.output
    assert TOKEN not in result.output
    assert not result.orphans
    assert result.seconds - baseline.seconds < 2 * BUDGET + 3 * SLACK
    assert {scratch.state(f"s{n}.flac", None) for n in range(6)} == {"tagged"}


def test_ctrl_c_in_a_dripping_lookup_ends_beet_within_seconds(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    """SIGINT to the process group of a real ``beet emotion -w`` while its lookups drip (a
    60 s budget, so only the interrupt can end them): it prints its summary and exits at
    once; nothing of it keeps running, no item is half-written."""
    scratch = _scratch(tmp_path, tiny_checkpoint, tracks=4, timeout=60.0)
    assert isinstance(scratch, catalogue.ProxiedScratch)
    timing: dict[str, float] = {}
    with catalogue.drip_server(0.5) as drip:
        scratch.proxy = drip.url

        def interrupt(process: subprocess.Popen[str]) -> None:
            assert drip.connected.wait(60), "no lookup reached the drip server"
            time.sleep(0.5)
            os.killpg(process.pid, signal.SIGINT)
            sent = time.monotonic()
            ended = catalogue.exit_time(process.pid, 30.0)
            timing["exit"] = (ended or float("inf")) - sent

        result = scratch.beet("emotion", "-w", on_start=interrupt)
    assert timing["exit"] < 5.0, result.output[-2000:]
    assert "interrupted" in result.output
    assert "Traceback" not in result.output
    assert not result.orphans
    states = {scratch.state(f"s{n}.flac", None) for n in range(4)}
    assert states <= {"tagged", "untouched"}
