"""The analysis engine's parts on their own: album tracking, failures as values, the
predictor's stream and its warnings, item selection, the options table."""

from __future__ import annotations

import optparse
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import confuse
from beets.library import Item, Library

from beetsplug.emotion import settings
from beetsplug.emotion.albums import AlbumTracker
from beetsplug.emotion.failures import ANALYSE, WRITE, Failure
from beetsplug.emotion.model_inputs import predict_stream
from beetsplug.emotion.progress import Summary
from beetsplug.emotion.selection import select_items
from beetsplug.emotion.tags import TagError


class FakeAlbum:
    def __init__(self, album_id: int, tracks: list[Any]) -> None:
        self.id = album_id
        self.tracks = tracks

    def items(self) -> list[Any]:
        return self.tracks


def _track(item_id: int, album_id: int | None = None) -> Any:
    return SimpleNamespace(id=item_id, album_id=album_id, path=f"/m/{item_id}.flac".encode())


def test_an_album_is_done_with_its_last_track_and_untouched_ones_at_the_end() -> None:
    one, two, three = _track(1, 10), _track(2, 10), _track(3, 20)
    first, second = FakeAlbum(10, [one, two]), FakeAlbum(20, [three])
    related = FakeAlbum(30, [_track(4, 30)])
    tracker = AlbumTracker([first, second], [related], todo=[one, two])
    assert tracker.albums == [first, second]  # nothing of album 30 is analysed again
    assert tracker.done(one) is None
    assert tracker.done(two) is first
    assert tracker.done(two) is None  # handed out once
    assert tracker.complete() == [second]


def test_a_related_album_is_aggregated_again_only_when_a_track_is_redone() -> None:
    track = _track(5, 40)
    related = FakeAlbum(40, [track])
    assert AlbumTracker([], [related], todo=[track]).albums == [related]
    assert AlbumTracker([], [related], todo=[]).albums == []


def test_failures_keep_path_stage_and_message_apart() -> None:
    item = _track(1)
    failure = Failure.from_model(item, "1.flac: cannot decode\n the audio")
    assert (failure.path, failure.stage, failure.message) == (
        "/m/1.flac",
        ANALYSE,
        "cannot decode the audio",
    )
    assert str(Failure.from_model(item, "/m/1.flac: bad")) == "/m/1.flac: bad"
    written = Failure.from_tag_error(TagError(b"/m/1.flac", "cannot write tags (full)"), WRITE)
    assert str(written) == "/m/1.flac: cannot write tags (full)" and written.stage == WRITE
    summary = Summary(tagged=0)
    summary.failed.append(written)
    assert "  failed: /m/1.flac: cannot write tags (full)" in summary.lines()


class FakePredictor:
    """Warns once per input, to the stream's ``warn`` when given one (as lgfn_model's does)."""

    def __init__(self) -> None:
        self.warn = print

    def predict_many(self, inputs: Any, warn: Any = None) -> Iterator[str]:
        for name in inputs:
            (warn or self.warn)(f"warned about {name}")
            yield name


def test_warnings_go_to_the_stream_that_caused_them_only() -> None:
    predictor = FakePredictor()
    seen: list[str] = []
    assert list(predict_stream(predictor, ["a", "b"], warn=seen.append)) == ["a", "b"]
    assert seen == ["warned about a", "warned about b"]
    assert predictor.warn is print  # the shared predictor is left as it was
    stream = predict_stream(predictor, ["c", "d"], warn=seen.append)
    next(stream)
    stream.close()
    assert predictor.warn is print and seen[-1] == "warned about c"


def test_select_items_tracks_or_albums(tmp_path: Path) -> None:
    lib = Library(str(tmp_path / "library.db"), str(tmp_path))
    try:
        single = Item(title="Alone", path=b"/m/alone.flac")
        lib.add(single)
        album = lib.add_album(
            [Item(title=f"T{n}", album="Record", path=f"/m/{n}.flac".encode()) for n in (1, 2)]
        )
        tracks = select_items(lib, optparse.Values({"album": False}), ["title:T"])
        assert [i.title for i in tracks.items] == ["T1", "T2"] and tracks.albums == []
        albums = select_items(lib, optparse.Values({"album": True}), ["Record"])
        assert [a.id for a in albums.albums] == [album.id]
        assert sorted(i.title for i in albums.items) == ["T1", "T2"]
        assert albums.title(["Record"]) == "Record"
        assert tracks.title(["title:T"]) == '2 tracks matching "title:T"'
    finally:
        lib._close()


def test_every_default_goes_through_its_check() -> None:
    """Options left out read as their defaults, checked as a written value would be."""
    view = confuse.RootView([])
    chosen = settings.read_settings(view["emotion"])
    assert chosen.workers is None and chosen.threads is None  # "auto"
    assert chosen.batch_size == settings.DEFAULTS["batch_size"] == 16
    assert set(settings.DEFAULTS) == set(settings.OPTIONS)
