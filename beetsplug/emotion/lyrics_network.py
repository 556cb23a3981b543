"""Network lyrics: ``syncedlyrics`` providers (synced first) and Genius via ``lyricsgenius``.

Every lookup is bounded: each HTTP request gets a timeout no longer than what is left of the
lookup's total budget, and a watchdog cuts its sockets when that budget runs out (a server
that drips a byte a second never trips a read timeout, which is per socket read); nothing
is retried, and Musixmatch's token request (which retries
forever after HTTP 401 in syncedlyrics) is replaced by a single attempt. HTTP 401/403/429 and
5xx answers raise instead of reading as "not found", so a transient failure is never
remembered as a negative answer. A source that is refused (401/403/429) or fails three times
in a row is switched off for the rest of the run.

Why this module is long: the deadline machinery (a watchdog over urllib3's sockets, the
guarded session) and the two providers share one set of failure types and one health
record, which decide together whether a source is "not found", failed or switched off; split
apart, each half would need the other's internals.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import types
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import requests
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.connectionpool

NETWORK_SOURCES: tuple[str, ...] = ("syncedlyrics", "genius")
PROVIDERS: tuple[str, ...] = ("lrclib", "musixmatch", "netease", "megalobiz")
"""syncedlyrics providers this plugin drives (its Genius scraper is replaced by ``genius``)."""
MAX_CONSECUTIVE_FAILURES = 3
CONNECT_TIMEOUT = 3.0
"""Seconds to wait for a connection: a host that does not answer the handshake by then is
as good as down (a blackholed network would otherwise cost the whole budget per lookup)."""


class LyricsLookupError(Exception):
    """A network lookup that failed (not a "not found"); the message is one line."""


class SourceOff(LyricsLookupError):
    """The source is switched off for the rest of the run: said once in the summary, not on
    every track."""


class _Refused(LyricsLookupError):
    """The service refused us (HTTP 401/403/429): stop asking it during this run."""


@dataclass(frozen=True)
class NetworkLyrics:
    text: str
    synced: bool
    label: str
    """What ``emotion_lyrics`` records, e.g. ``syncedlyrics:lrclib`` or ``genius``."""


class _Unreachable(LyricsLookupError):
    """No connection could be made (refused, no route, no DNS, connect timeout)."""


class NetworkHealth:
    """Whether the network is there at all, shared by every session of a run.

    Offline means: connections to two different hosts failed and none ever succeeded. Then
    every network source is switched off at once, so a run with the network down costs a few
    seconds, not a timeout per provider per item.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.connected = False
        self.unreachable: dict[str, str] = {}

    def ok(self) -> None:
        self.connected = True

    def failed(self, host: str, reason: str) -> None:
        with self._lock:
            self.unreachable.setdefault(host, reason)

    @property
    def offline(self) -> bool:
        return not self.connected and len(self.unreachable) >= 2

    def reason(self) -> str:
        hosts = ", ".join(f"{host}: {why}" for host, why in sorted(self.unreachable.items()))
        return f"network unreachable ({hosts})"


class _Watch:
    """The connections and sockets of one request, shut down when its deadline passes.

    A socket read timeout bounds each read, not the answer: a server (or proxy) that sends a
    byte every second keeps every read short and the request alive for ever. So each request
    of a lookup is watched by a timer set to the lookup's deadline; when it fires, every
    socket the request used is shut down, and the read blocked on it returns at once (EOF),
    whatever the library above it (http.client, urllib3, requests, ssl) is doing.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: list[Any] = []
        self.fired = False

    def add(self, thing: Any) -> None:
        with self._lock:
            if not self.fired:
                self._watched.append(thing)
                return
        _cut(thing)  # too late already: a connection made after the deadline is cut at once

    def fire(self) -> None:
        with self._lock:
            self.fired = True
            watched, self._watched = self._watched, []
        for thing in watched:
            _cut(thing)


def _cut(thing: Any) -> None:
    # A connection's socket changes while it connects (raw, then TLS): take it at cut time.
    sock = getattr(thing, "sock", None) if not isinstance(thing, socket.socket) else thing
    if sock is None:
        return
    # Already closed, or detached (wrapped in TLS: the wrapper is what gets cut): nothing to do.
    with suppress(OSError, ValueError):
        sock.shutdown(socket.SHUT_RDWR)


_current = threading.local()
"""The watch of the request this thread is making (requests are synchronous)."""


def _watch(thing: Any) -> None:
    watch: _Watch | None = getattr(_current, "watch", None)
    if watch is not None:
        watch.add(thing)


class _WatchedConnection(urllib3.connection.HTTPConnection):
    """Registers itself and its socket with the current request's watch when it connects
    and for each request it sends (a kept-alive connection serves later requests too).

    The connection covers the connect phase (a proxy's CONNECT answer is read through the
    raw socket it holds then); the socket itself is watched as well, because http.client
    drops the connection's hold on it for an answer without a length, which is then read
    to EOF through the socket alone. The TLS handshake needs no watch: it is one call,
    bounded as a whole by the socket timeout (the connect timeout)."""

    def connect(self) -> None:
        _watch(self)
        super().connect()
        _watch(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        _watch(self)
        if self.sock is not None:
            _watch(self.sock)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(_WatchedConnection, urllib3.connection.HTTPSConnection):
    pass


class _WatchedHTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _WatchedHTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _WatchedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter with connections that a watch can cut, proxied ones included."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        # An instance attribute: urllib3's module-level table stays as it is for everyone else.
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS pools are its own: left unwatched
            manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager


def _connect_failed(error: requests.RequestException) -> bool:
    """True when the request never got a connection (as opposed to a reset or a bad answer)."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


class GuardedSession(requests.Session):
    """A session whose requests share one deadline and turn refusals into exceptions."""

    def __init__(self, timeout: float, health: NetworkHealth | None = None) -> None:
        super().__init__()
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.health = health or NetworkHealth()
        adapter = _WatchedAdapter()
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def start(self) -> None:
        self.deadline = time.monotonic() + self.timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        if self.health.offline:
            raise _Unreachable(self.health.reason())
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise LyricsLookupError(f"timed out after {self.timeout:g} s")
        left = min(left, self.timeout)
        kwargs["timeout"] = (min(left, CONNECT_TIMEOUT), left)
        host = _host(url.decode() if isinstance(url, bytes) else url)
        # The whole answer, headers and body, must arrive before the deadline: a watch cuts
        # this request's sockets when it passes (a daemon timer: it never holds the process).
        watch = _Watch()
        timer = threading.Timer(left, watch.fire)
        timer.daemon = True
        outer, _current.watch = getattr(_current, "watch", None), watch
        timer.start()
        try:
            response = super().request(method, url, *args, **kwargs)
        except Exception as error:
            if watch.fired:  # whatever broke when the sockets were cut
                raise LyricsLookupError(f"timed out after {self.timeout:g} s") from None
            if not isinstance(error, requests.RequestException):
                raise
            # Only the exception's type is reported: its text holds URLs (and query strings).
            if _connect_failed(error):
                why = (
                    f"timed out after {kwargs['timeout'][0]:g} s"
                    if isinstance(error, requests.Timeout)
                    else type(error).__name__
                )
                self.health.failed(host, why)
                raise _Unreachable(f"cannot connect to {host} ({why})") from None
            if isinstance(error, requests.Timeout):
                raise LyricsLookupError(f"timed out after {self.timeout:g} s") from None
            raise LyricsLookupError(f"network error ({type(error).__name__})") from None
        finally:
            timer.cancel()
            _current.watch = outer
        if watch.fired:  # cut mid-body: an answer without a length would end there, short
            raise LyricsLookupError(f"timed out after {self.timeout:g} s")
        self.health.ok()
        status = response.status_code
        if status in (401, 403, 429):
            raise _Refused(f"HTTP {status} from {_host(response.url)}")
        if status >= 500:
            raise LyricsLookupError(f"HTTP {status} from {_host(response.url)}")
        return response


def _host(url: str) -> str:
    return url.split("/")[2] if "://" in url else url


def _quiet(provider: Any) -> None:
    """syncedlyrics adds a stream handler per provider object: drop it."""
    logger = getattr(provider, "logger", None)
    if isinstance(logger, logging.Logger):
        for handler in list(logger.handlers):
            logger.removeHandler(handler)


def _musixmatch_token(self: Any) -> None:
    """One token request; syncedlyrics' own version sleeps and retries forever on 401."""
    answer = self._get("token.get", [("user_language", "en")]).json()
    header = answer.get("message", {}).get("header", {})
    if header.get("status_code") != 200:
        raise _Refused(f"musixmatch refused a token (status {header.get('status_code')})")
    self.token = answer["message"]["body"]["user_token"]


class _SyncedLyrics:
    def __init__(
        self, providers: Sequence[str], timeout: float, health: NetworkHealth | None = None
    ) -> None:
        from syncedlyrics import providers as module

        classes = {
            "lrclib": module.Lrclib,
            "musixmatch": module.Musixmatch,
            "netease": module.NetEase,
            "megalobiz": module.Megalobiz,
        }
        self.session = GuardedSession(timeout, health)
        self.providers: list[tuple[str, Any]] = []
        for name in providers:
            provider = classes[name]()
            _quiet(provider)
            provider.session = self.session
            if name == "musixmatch":
                provider._get_token = types.MethodType(_musixmatch_token, provider)
            self.providers.append((name, provider))

    def lookup(
        self, term: str, skip: set[str]
    ) -> tuple[NetworkLyrics | None, list[str], list[str]]:
        """(lyrics, errors, refused provider names); synced text wins over plain."""
        plain: NetworkLyrics | None = None
        errors: list[str] = []
        refused: list[str] = []
        self.session.start()  # one budget for the whole lookup, every provider included
        for name, provider in self.providers:
            if name in skip:
                continue
            try:
                found = provider.get_lrc(term)
            except _Refused as error:
                errors.append(f"{name}: {error}")
                refused.append(name)
                continue
            except LyricsLookupError as error:
                errors.append(f"{name}: {error}")
                continue
            except Exception as error:  # malformed answers: JSON, missing keys, bad HTML
                errors.append(f"{name}: malformed response ({type(error).__name__})")
                continue
            if found is None:
                continue
            synced = (getattr(found, "synced", None) or "").strip()
            unsynced = (getattr(found, "unsynced", None) or "").strip()
            label = f"syncedlyrics:{name}"
            if synced:
                return NetworkLyrics(synced, True, label), errors, refused
            if unsynced and plain is None:
                plain = NetworkLyrics(unsynced, False, label)
        return plain, errors, refused


class _Genius:
    def __init__(self, token: str, timeout: float, health: NetworkHealth | None = None) -> None:
        import lyricsgenius

        # It logs "No results found" as a warning for every miss; the summary reports those.
        logging.getLogger("lyricsgenius").setLevel(logging.ERROR)
        self.client = lyricsgenius.Genius(
            token,
            timeout=max(1, int(timeout)),
            retries=0,
            sleep_time=0,
            remove_section_headers=True,
            skip_non_songs=True,
        )
        self.session = GuardedSession(timeout, health)
        self.session.headers.update(self.client._session.headers)
        self.client._session = self.session

    def lookup(self, title: str, artist: str) -> NetworkLyrics | None:
        self.session.start()
        try:
            song = self.client.search_song(title, artist, get_full_info=False)
        except LyricsLookupError:
            raise
        except Exception as error:
            reason = f"genius: malformed response ({type(error).__name__})"
            raise LyricsLookupError(reason) from None
        text = (getattr(song, "lyrics", None) or "").strip() if song is not None else ""
        return NetworkLyrics(text, False, "genius") if text else None


class NetworkSources:
    """The enabled network sources, one client set per thread, with run-level health."""

    def __init__(
        self,
        sources: Sequence[str],
        providers: Sequence[str] = ("lrclib", "musixmatch", "netease"),
        genius_token: str = "",
        timeout: float = 10.0,
        log: Any = None,
    ) -> None:
        unknown = [p for p in providers if p.lower() not in PROVIDERS]
        if unknown:
            raise ValueError(
                f"unknown syncedlyrics provider(s) {', '.join(unknown)}; "
                f"choose from {', '.join(PROVIDERS)}"
            )
        self.providers = [p.lower() for p in providers]
        self.genius_token = genius_token.strip()
        self.sources = [
            s for s in sources if s != "genius" or self.genius_token
        ]  # Genius needs a token: without one it is simply off
        if "syncedlyrics" in self.sources and not self.providers:
            self.sources.remove("syncedlyrics")
        self.timeout = float(timeout)
        self._log = log
        self._local = threading.local()
        self._lock = threading.Lock()
        self._disabled: set[str] = set()
        self._failures: dict[str, int] = {}
        self.disabled_reasons: dict[str, str] = {}
        self.health = NetworkHealth()

    @property
    def enabled(self) -> bool:
        return bool(self.sources)

    def _clients(self) -> dict[str, Any]:
        clients = getattr(self._local, "clients", None)
        if clients is None:
            clients = {}
            if "syncedlyrics" in self.sources:
                clients["syncedlyrics"] = _SyncedLyrics(self.providers, self.timeout, self.health)
            if "genius" in self.sources:
                clients["genius"] = _Genius(self.genius_token, self.timeout, self.health)
            self._local.clients = clients
        return clients

    def _disable(self, name: str, reason: str) -> None:
        with self._lock:
            if name in self._disabled:
                return
            self._disabled.add(name)
            self.disabled_reasons[name] = reason
        if self._log is not None:
            self._log.warning("lyrics: not asking {} again during this run ({})", name, reason)

    def _record(self, name: str, failed: bool) -> None:
        with self._lock:
            count = self._failures.get(name, 0) + 1 if failed else 0
            self._failures[name] = count
        if count >= MAX_CONSECUTIVE_FAILURES:
            self._disable(name, f"{count} failures in a row")

    def lookup(self, source: str, item: Any) -> NetworkLyrics | None:
        """Lyrics, None for a clean "not found", or LyricsLookupError for anything else."""
        if source not in self.sources:
            raise LyricsLookupError(f"{source}: not enabled")
        title = str(item.get("title") or "").strip()
        artist = str(item.get("artist") or "").strip()
        if not title:
            raise LyricsLookupError(f"{source}: no title to search for")
        if self.health.offline:
            for name in self.sources:
                self._disable(name, self.health.reason())
        if source in self._disabled:
            raise SourceOff(f"{source}: switched off for this run")
        client = self._clients()[source]
        if source == "genius":
            key = "genius"
            try:
                found = client.lookup(title, artist)
            except _Refused as error:
                self._disable(key, str(error))
                raise LyricsLookupError(f"genius: {error}") from None
            except LyricsLookupError as error:
                self._record(key, True)
                message = str(error)
                raise LyricsLookupError(
                    message if message.startswith("genius") else f"genius: {message}"
                ) from None
            self._record(key, False)
            return found
        skip = {f"syncedlyrics:{p}" for p in self.providers} & self._disabled
        found, errors, refused = client.lookup(
            f"{title} {artist}".strip(), {name.split(":", 1)[1] for name in skip}
        )
        for name in refused:
            self._disable(f"syncedlyrics:{name}", next(e for e in errors if e.startswith(name)))
        for name in self.providers:
            failed = any(e.startswith(f"{name}:") for e in errors)
            if f"syncedlyrics:{name}" not in skip:
                self._record(f"syncedlyrics:{name}", failed)
        if found is not None:
            return found
        if errors:
            raise LyricsLookupError("syncedlyrics: " + "; ".join(errors))
        if skip:  # some providers were not asked: not a complete "not found"
            raise SourceOff("syncedlyrics: providers switched off for this run")
        return None
