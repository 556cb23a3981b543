"""Fault suite, network: every lyrics provider failing in every way, and the network gone.

HTTP answers come from ``requests_mock``; "network down" and "blackholed" are real sockets
(a closed local port, a listening socket whose backlog is full) reached through urllib3, so
the timeouts are the real ones.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import requests_mock
import urllib3.util.connection
from beets.library import Item
from requests_mock import ANY

from beetsplug.emotion import lyrics_network
from beetsplug.emotion.lyrics_sources import LyricsFinder, LyricsSettings
from tools import fault_catalogue as catalogue

from .conftest import BeetsEnv

TOKEN = "genius-SECRET-token-5c1d"
ALL_NETWORK = {
    "lyrics_sources": ["lrc", "syncedlyrics", "genius"],
    "syncedlyrics_providers": ["lrclib", "musixmatch", "netease"],
    "genius_token": TOKEN,
    "lyrics_threads": 4,
    "lyrics_timeout": 10.0,
}


def _finder() -> LyricsFinder:
    return LyricsFinder(
        LyricsSettings(
            sources=["syncedlyrics", "genius"],
            providers=["lrclib", "musixmatch", "netease"],
            genius_token=TOKEN,
            timeout=5.0,
        )
    )


@pytest.mark.parametrize(
    "answer",
    [
        {"exc": requests.exceptions.ConnectionError(ConnectionResetError(104, "reset"))},
        {"status_code": 401},
        {"status_code": 403},
        {"status_code": 502},
        {"content": bytes(range(256)) * 8},
        {"text": "{" * 5000},
    ],
    ids=["reset", "401", "403", "502", "binary-body", "broken-json"],
)
def test_every_provider_failing_is_no_lyrics(
    tmp_path: Path, requests_mock: requests_mock.Mocker, answer: dict[str, Any]
) -> None:
    requests_mock.register_uri(ANY, ANY, **answer)
    finder = _finder()
    item = Item(path=str(tmp_path / "song.mp3"), title="Rain Song", artist="The Band")
    started = time.monotonic()
    outcomes = [finder.find(item) for _ in range(5)]
    assert time.monotonic() - started < 5.0  # nothing waits, nothing retries
    for outcome in outcomes:
        assert outcome.lyrics is None and outcome.source == "none"
        assert outcome.misses == set()  # a failure is never remembered as "not found"
        assert all("\n" not in error and TOKEN not in error for error in outcome.errors)
    assert outcomes[0].errors  # the first lookup says why
    assert requests_mock.call_count <= 3 * 4  # switched off after 3 failures (or at once)


def test_token_never_reaches_output_or_logs(
    env: BeetsEnv,
    requests_mock: requests_mock.Mocker,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Genius answers with errors whose text holds the token (as a proxy or a server might
    echo the request); with -vv and every logger at DEBUG, the token appears nowhere."""
    env.add(*(env.make_track(f"{n}.flac", title=f"Song {n}", folder=env.music) for n in range(3)))
    env.restart(**ALL_NETWORK)
    echo = f"GET /search?access_token={TOKEN} Authorization: Bearer {TOKEN}"
    requests_mock.register_uri(
        ANY, "https://genius.com/api/search/multi", status_code=401, text=echo
    )
    requests_mock.register_uri(
        ANY,
        ANY,
        exc=requests.exceptions.ConnectionError(echo),
    )
    caplog.set_level(logging.DEBUG)

    out = env.run("-vv", "emotion", "-W")
    out += env.run("config")

    assert "tagged 3" in out and "lyrics lookup:" in out
    assert "REDACTED" in out  # beet config hides it too
    captured = capsys.readouterr()
    everything = out + captured.out + captured.err + caplog.text
    assert TOKEN not in everything


@pytest.mark.parametrize("kind", ["refused", "blackhole"])
def test_network_down_costs_seconds_not_timeouts(
    env: BeetsEnv, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """With the network down (every connection refused) or blackholed (connections never
    complete), a run takes about as long as one with network sources off: the first failed
    connections switch every network source off for the run."""
    tracks = [
        env.make_track(f"{n}.flac", title=f"Song {n}", seconds=1.0, folder=env.music)
        for n in range(12)
    ]
    env.add(*tracks)
    env.run("emotion", "-W")  # loads the model and the lyrics sources off: the baseline
    started = time.monotonic()
    env.run("emotion", "-W", "-f")
    baseline = time.monotonic() - started

    monkeypatch.setattr(lyrics_network, "CONNECT_TIMEOUT", 1.0)
    with catalogue._fault_server(kind) as address:
        real = urllib3.util.connection.create_connection

        def connect(_address: Any, *args: Any, **kwargs: Any) -> Any:
            return real(address, *args, **kwargs)

        monkeypatch.setattr(urllib3.util.connection, "create_connection", connect)
        env.restart(**ALL_NETWORK)
        started = time.monotonic()
        out = env.run("emotion", "-W", "-f")
        down = time.monotonic() - started

    assert "tagged 12, skipped 0, failed 0" in out
    assert "lyrics by source: none 12" in out
    # Lines for the lookups already under way when the network was found down (at most
    # 2 x lyrics_threads), then one per source switched off: not one per track and source.
    per_track = [line for line in out.splitlines() if f"lyrics lookup: {env.music}" in line]
    assert len(per_track) <= 8
    assert "genius: not asked again in this run (network unreachable" in out
    # Blackholed: two hosts' connect timeouts (1 s each here), not lyrics_timeout (10 s)
    # per lookup. The bound leaves room for a busy machine.
    assert down - baseline < 5.0, (down, baseline)
