"""Every lyrics source: local ones on real files, network ones with HTTP mocked."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import requests_mock
from beets.library import Item
from mutagen.flac import FLAC
from mutagen.id3 import ID3, SYLT, USLT
from mutagen.mp4 import MP4

from beetsplug.emotion import lyrics_sources
from beetsplug.emotion.lyrics_network import GuardedSession, LyricsLookupError, NetworkSources
from beetsplug.emotion.lyrics_sources import LyricsFinder, LyricsSettings

from .conftest import BeetsEnv

LRC = "[00:01.00]first line\n[00:02.50]second line\n"
LRCLIB_SEARCH = "https://lrclib.net/api/search"
NETEASE_SEARCH = "https://music.163.com/api/search/pc"
NETEASE_LYRIC = "https://music.163.com/api/song/lyric"
GENIUS_MULTI = "https://genius.com/api/search/multi"
GENIUS_SEARCH = "https://genius.com/api/search"
GENIUS_PAGE = "https://genius.com/The-band-rain-song-lyrics"


def _item(path: Path, **values: Any) -> Item:
    return Item(path=str(path), title="Rain Song", artist="The Band", **values)


def _finder(*sources: str, **settings: Any) -> LyricsFinder:
    return LyricsFinder(LyricsSettings(sources=sources, **settings))


@pytest.fixture
def audio(env: BeetsEnv) -> Path:
    return env.make_track("song.mp3")


# -- beets' lyrics field ---------------------------------------------------------------------


def test_beets_field_synced_and_plain(audio: Path) -> None:
    found = _finder("beets").find(_item(audio, lyrics=LRC))
    assert found.source == "beets"
    assert found.lyrics is not None and found.lyrics.synced
    assert [line.start for line in found.lyrics.lines] == [1.0, 2.5]

    found = _finder("beets").find(_item(audio, lyrics="just words\nmore words"))
    assert found.lyrics is not None and not found.lyrics.synced
    assert found.lyrics.texts == ["just words", "more words"]


def test_beets_field_drops_translations_and_legacy_source(audio: Path) -> None:
    translated = "[00:01.00]hola / hello\n[00:02.00]adios / goodbye"
    found = _finder("beets").find(_item(audio, lyrics=translated))
    assert found.lyrics is not None and found.lyrics.texts == ["hola", "adios"]

    legacy = "old words\n\nSource: https://genius.com/x-lyrics"
    found = _finder("beets").find(_item(audio, lyrics=legacy))
    assert found.lyrics is not None and found.lyrics.texts == ["old words"]


def test_instrumental_stops_the_search(audio: Path) -> None:
    audio.with_suffix(".lrc").write_text(LRC)
    found = _finder("beets", "lrc").find(_item(audio, lyrics_instrumental=True))
    assert found.lyrics is None and found.source == "none"


# -- .lrc beside the file ----------------------------------------------------------------------


def test_sidecar_lrc_any_encoding(audio: Path) -> None:
    audio.with_suffix(".lrc").write_bytes("[00:03.00]canción de amor\n".encode("latin-1"))
    found = _finder("lrc").find(_item(audio))
    assert found.source == "lrc"
    assert found.lyrics is not None and found.lyrics.texts == ["canción de amor"]
    assert found.origin == audio.with_suffix(".lrc")


def test_sidecar_garbage_falls_through(audio: Path) -> None:
    audio.with_suffix(".lrc").write_bytes(b"\x00\x01\x02\x03" * 50)
    found = _finder("lrc").find(_item(audio))
    assert found.lyrics is None and found.errors == []


def test_unreadable_sidecar_is_one_line_and_the_chain_goes_on(
    audio: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sidecar = audio.with_suffix(".lrc")
    sidecar.write_text(LRC)

    def refuse(path: str, source: str | None = None) -> Any:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr("lgfn_model.data.lyrics_files.read_lyrics_file", refuse)
    found = _finder("lrc", "beets").find(_item(audio, lyrics="plain words"))
    assert found.source == "beets"
    assert found.errors == [f"{sidecar}: cannot read lyrics (Permission denied)"]


# -- embedded --------------------------------------------------------------------------------


def test_embedded_sylt_before_uslt(audio: Path) -> None:
    tags = ID3(audio)
    tags.add(USLT(encoding=3, lang="eng", desc="", text="plain line"))
    tags.add(SYLT(encoding=3, lang="eng", format=2, type=1, text=[("sung", 1500), ("words", 500)]))
    tags.save(audio)
    found = _finder("embedded").find(_item(audio))
    assert found.source == "embedded"
    assert found.lyrics is not None and found.lyrics.synced
    assert found.lyrics.texts == ["words", "sung"]


def test_embedded_uslt_may_hold_lrc(audio: Path) -> None:
    tags = ID3(audio)
    tags.add(USLT(encoding=3, lang="eng", desc="", text=LRC))
    tags.save(audio)
    found = _finder("embedded").find(_item(audio))
    assert found.lyrics is not None and found.lyrics.synced


def test_embedded_vorbis_and_mp4(env: BeetsEnv) -> None:
    flac = env.make_track("song.flac")
    media = FLAC(flac)
    media["LYRICS"] = "vorbis words"
    media.save()
    found = _finder("embedded").find(_item(flac))
    assert found.lyrics is not None and found.lyrics.texts == ["vorbis words"]

    m4a = env.make_track("song.m4a")
    media = MP4(m4a)
    media["\xa9lyr"] = ["mp4 words"]
    media.save()
    found = _finder("embedded").find(_item(m4a))
    assert found.lyrics is not None and found.lyrics.texts == ["mp4 words"]


def test_embedded_damaged_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    broken = tmp_path / "broken.flac"
    broken.write_bytes(b"fLaC" + b"\xff" * 64)
    found = _finder("embedded").find(_item(broken))
    assert found.lyrics is None
    assert len(found.errors) <= 1 and all("broken.flac" in e for e in found.errors)


def test_order_and_switching_sources_off(audio: Path) -> None:
    audio.with_suffix(".lrc").write_text(LRC)
    item = _item(audio, lyrics="field words")
    assert _finder("beets", "lrc").find(item).source == "beets"
    assert _finder("lrc", "beets").find(item).source == "lrc"
    assert _finder("embedded").find(item).source == "none"
    with pytest.raises(ValueError, match="unknown lyrics source"):
        _finder("beets", "google")


# -- syncedlyrics ----------------------------------------------------------------------------


def _lrclib(mock: requests_mock.Mocker, synced: str | None = LRC, plain: str | None = "x") -> None:
    mock.get(LRCLIB_SEARCH, json=[{"id": 7, "artistName": "The Band", "trackName": "Rain Song"}])
    mock.get("https://lrclib.net/api/get/7", json={"syncedLyrics": synced, "plainLyrics": plain})


def test_syncedlyrics_found(audio: Path, requests_mock: requests_mock.Mocker) -> None:
    _lrclib(requests_mock)
    found = _finder("syncedlyrics", providers=["lrclib"]).find(_item(audio))
    assert found.source == "syncedlyrics:lrclib"
    assert found.lyrics is not None and found.lyrics.synced
    assert found.fetched is not None and found.fetched.synced
    assert requests_mock.request_history[0].qs["q"] == ["rain song the band"]


def test_syncedlyrics_prefers_synced_from_a_later_provider(
    audio: Path, requests_mock: requests_mock.Mocker
) -> None:
    _lrclib(requests_mock, synced=None, plain="plain only")
    requests_mock.get(
        NETEASE_SEARCH,
        json={
            "result": {"songs": [{"id": 9, "name": "Rain Song", "artists": [{"name": "The Band"}]}]}
        },
    )
    lrc = "[00:01.00]a\n" * 12
    requests_mock.get(NETEASE_LYRIC, json={"lrc": {"lyric": lrc}})
    found = _finder("syncedlyrics", providers=["lrclib", "netease"]).find(_item(audio))
    assert found.source == "syncedlyrics:netease"
    assert found.lyrics is not None and found.lyrics.synced


def test_syncedlyrics_plain_when_nothing_synced(
    audio: Path, requests_mock: requests_mock.Mocker
) -> None:
    _lrclib(requests_mock, synced=None, plain="plain only")
    found = _finder("syncedlyrics", providers=["lrclib"]).find(_item(audio))
    assert found.lyrics is not None and found.lyrics.texts == ["plain only"]
    assert found.fetched is not None and not found.fetched.synced


def test_syncedlyrics_not_found_is_a_miss(audio: Path, requests_mock: requests_mock.Mocker) -> None:
    requests_mock.get(LRCLIB_SEARCH, json=[])
    found = _finder("syncedlyrics", providers=["lrclib"]).find(_item(audio))
    assert found.lyrics is None and found.misses == {"syncedlyrics"} and found.errors == []


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        ({"exc": requests.exceptions.ConnectTimeout}, "timed out"),
        ({"exc": requests.exceptions.ReadTimeout}, "timed out"),
        ({"status_code": 429}, "HTTP 429"),
        ({"status_code": 500}, "HTTP 500"),
        ({"status_code": 503}, "HTTP 503"),
        ({"text": "<html>not json</html>"}, "malformed response"),
        ({"json": {"unexpected": "shape"}}, "malformed response"),
    ],
)
def test_syncedlyrics_failures_are_errors_not_misses(
    audio: Path, requests_mock: requests_mock.Mocker, response: dict[str, Any], reason: str
) -> None:
    requests_mock.get(LRCLIB_SEARCH, **response)
    found = _finder("syncedlyrics", providers=["lrclib"]).find(_item(audio))
    assert found.lyrics is None
    assert found.misses == set()  # a failure is never remembered as "no lyrics"
    assert len(found.errors) == 1 and reason in found.errors[0]
    assert "\n" not in found.errors[0] and str(audio) in found.errors[0]


def test_refused_provider_is_not_asked_again_this_run(
    audio: Path, requests_mock: requests_mock.Mocker
) -> None:
    requests_mock.get(LRCLIB_SEARCH, status_code=429)
    finder = _finder("syncedlyrics", providers=["lrclib"])
    for _ in range(3):
        finder.find(_item(audio))
    assert requests_mock.call_count == 1


def test_failing_provider_is_switched_off_after_three(
    audio: Path, requests_mock: requests_mock.Mocker
) -> None:
    requests_mock.get(LRCLIB_SEARCH, status_code=502)
    finder = _finder("syncedlyrics", providers=["lrclib"])
    outcomes = [finder.find(_item(audio)) for _ in range(5)]
    assert all(outcome.errors for outcome in outcomes[:3])
    # Then it is off: said once (in the run's summary), not on every track.
    assert not any(outcome.errors or outcome.misses for outcome in outcomes[3:])
    assert "3 failures in a row" in finder.network.disabled_reasons["syncedlyrics:lrclib"]
    assert requests_mock.call_count == 3


def test_musixmatch_401_is_not_retried_forever(
    audio: Path, requests_mock: requests_mock.Mocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_sleep(seconds: float) -> None:
        raise AssertionError("musixmatch slept to retry")

    monkeypatch.setattr(time, "sleep", no_sleep)
    requests_mock.get(
        re.compile("apic-desktop.musixmatch.com"),
        json={"message": {"header": {"status_code": 401}, "body": ""}},
    )
    _lrclib(requests_mock)
    found = _finder("syncedlyrics", providers=["musixmatch", "lrclib"]).find(_item(audio))
    assert found.source == "syncedlyrics:lrclib"  # the next provider still answers
    assert requests_mock.call_count == 3


def test_guarded_session_deadline() -> None:
    session = GuardedSession(timeout=0.05)
    session.deadline = time.monotonic() - 1
    with pytest.raises(LyricsLookupError, match="timed out"):
        session.get("https://lrclib.net/api/search")


def test_requests_get_a_bounded_timeout(audio: Path, requests_mock: requests_mock.Mocker) -> None:
    seen: list[Any] = []

    def answer(request: Any, context: Any) -> list[Any]:
        seen.append(request.timeout)
        return []

    requests_mock.get(LRCLIB_SEARCH, json=answer)
    _finder("syncedlyrics", providers=["lrclib"], timeout=3.0).find(_item(audio))
    # (connect, read): a host that does not answer the handshake fails fast.
    assert seen and all(0 < connect <= read <= 3.0 for connect, read in seen)


def test_no_title_no_search(tmp_path: Path, requests_mock: requests_mock.Mocker) -> None:
    item = Item(path=str(tmp_path / "x.mp3"), title="", artist="")
    found = _finder("syncedlyrics", providers=["lrclib"]).find(item)
    assert requests_mock.call_count == 0 and found.misses == set()


# -- Genius ----------------------------------------------------------------------------------


def _genius_song(mock: requests_mock.Mocker) -> None:
    song = {
        "id": 1,
        "title": "Rain Song",
        "primary_artist": {"name": "The Band"},
        "url": GENIUS_PAGE,
        "path": "/The-band-rain-song-lyrics",
        "lyrics_state": "complete",
        "instrumental": False,
    }
    hits = [{"index": "song", "type": "song", "result": song}]
    mock.get(GENIUS_MULTI, json={"response": {"sections": [{"type": "song", "hits": hits}]}})
    mock.get(
        GENIUS_PAGE,
        text='<div data-lyrics-container="true">[Verse]<br/>Rain falls<br/>on me</div>',
    )


def test_genius_found(audio: Path, requests_mock: requests_mock.Mocker) -> None:
    _genius_song(requests_mock)
    found = _finder("genius", genius_token="token").find(_item(audio))
    assert found.source == "genius"
    assert found.lyrics is not None and found.lyrics.texts == ["Rain falls", "on me"]


def test_genius_not_found(audio: Path, requests_mock: requests_mock.Mocker) -> None:
    requests_mock.get(GENIUS_MULTI, json={"response": {"sections": [{"type": "song", "hits": []}]}})
    requests_mock.get(GENIUS_SEARCH, json={"response": {"hits": []}})
    found = _finder("genius", genius_token="token").find(_item(audio))
    assert found.lyrics is None and found.misses == {"genius"} and found.errors == []


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        ({"exc": requests.exceptions.ConnectTimeout}, "timed out"),
        ({"status_code": 429}, "HTTP 429"),
        ({"status_code": 500}, "HTTP 500"),
        ({"text": "not json"}, "malformed response"),
    ],
)
def test_genius_failures(
    audio: Path, requests_mock: requests_mock.Mocker, response: dict[str, Any], reason: str
) -> None:
    requests_mock.get(GENIUS_MULTI, **response)
    found = _finder("genius", genius_token="token").find(_item(audio))
    assert found.lyrics is None and found.misses == set()
    assert len(found.errors) == 1 and reason in found.errors[0]


def test_genius_needs_a_token(audio: Path, requests_mock: requests_mock.Mocker) -> None:
    finder = _finder("genius")
    assert not finder.uses_network
    assert finder.find(_item(audio)).source == "none"
    assert requests_mock.call_count == 0


def test_unknown_provider_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown syncedlyrics provider"):
        NetworkSources(["syncedlyrics"], providers=["spotify"])


# -- through the command ---------------------------------------------------------------------


def test_negative_answers_are_remembered_until_force(
    env: BeetsEnv, requests_mock: requests_mock.Mocker, other_checkpoint: Path
) -> None:
    env.add(env.make_track("one.flac", title="Rain Song", artist="The Band"))
    env.restart(lyrics_sources=["lrc", "syncedlyrics"], syncedlyrics_providers=["lrclib"])
    requests_mock.get(LRCLIB_SEARCH, json=[])

    env.run("emotion")
    assert requests_mock.call_count == 1
    assert env.items()[0].emotion_lyrics_miss == "syncedlyrics"

    env.restart(checkpoint=str(other_checkpoint))  # a new model re-analyses...
    env.run("emotion")
    assert requests_mock.call_count == 1  # ...without asking again
    assert env.items()[0].emotion_lyrics_miss == "syncedlyrics"

    _lrclib(requests_mock)
    env.run("emotion", "-f")
    assert requests_mock.call_count == 3
    item = env.items()[0]
    assert item.emotion_lyrics == "syncedlyrics:lrclib"
    assert "emotion_lyrics_miss" not in item


def test_failures_are_reported_and_not_remembered(
    env: BeetsEnv, requests_mock: requests_mock.Mocker
) -> None:
    env.add(
        env.make_track("one.flac", title="Rain Song"), env.make_track("two.flac", title="Other")
    )
    env.restart(lyrics_sources=["syncedlyrics"], syncedlyrics_providers=["lrclib"])
    requests_mock.get(LRCLIB_SEARCH, status_code=500)

    out = env.run("emotion")

    assert "tagged 2" in out
    assert out.count("lyrics lookup:") == 2 and "HTTP 500" in out
    assert all("emotion_lyrics_miss" not in item for item in env.items())
    assert requests_mock.call_count == 2  # once per item


@pytest.mark.parametrize("store", ["field", "lrc"])
def test_store_fetched_synced_lyrics(
    env: BeetsEnv, requests_mock: requests_mock.Mocker, store: str
) -> None:
    fresh = env.make_track("fresh.flac", title="Rain Song")
    own = env.make_track("own.flac", title="Rain Song 2")
    own.with_suffix(".lrc").write_text("[00:00.10]my own\n")
    env.add(fresh, own)
    env.run("modify", "-y", "-W", "title:Rain Song 2", "lyrics=my words")
    env.restart(
        lyrics_sources=["syncedlyrics"], syncedlyrics_providers=["lrclib"], store_lyrics=store
    )
    _lrclib(requests_mock)

    env.run("emotion")

    by_title = {item.title: item for item in env.items()}
    if store == "field":
        assert by_title["Rain Song"].lyrics == LRC.strip()
    else:
        assert fresh.with_suffix(".lrc").read_text() == LRC
    assert by_title["Rain Song 2"].lyrics == "my words"  # what the user had stays
    assert own.with_suffix(".lrc").read_text() == "[00:00.10]my own\n"


def test_lyrics_sources_are_optional(audio: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lyrics_sources, "from_sidecar", lambda path: None)
    assert _finder("lrc").find(_item(audio)).source == "none"
