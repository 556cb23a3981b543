"""``python -m tools.plugin_bench``: the scratch library, the one model load, the record.

Speed itself is measured by running the command, never asserted here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from audio_factory import make_audio_file
from beets.library import Library
from mediafile import MediaFile

from beetsplug.emotion import fields
from tools.plugin_bench import CallTimer, main, timed_calls

from .conftest import TEST_MODEL_VERSION

RECORD_FIELDS = {
    "device",
    "model",
    "tracks",
    "workers",
    "batch_size",
    "load_s",
    "model_loads_setup",
    "predictor_wall_s",
    "plugin_wall_s",
    "overhead_pct",
    "overhead_pct_per_round",
    "cpu_overhead_pct",
    "plugin_own_s",
    "plugin_own_pct",
    "predictor_s_per_track",
    "plugin_s_per_track",
    "plugin_breakdown_s",
    "model_loads_plugin_run",
    "text_encoder_loads_plugin_run",
    "tracks_stored",
    "lrc_copied",
    "originals_untouched",
    "per_track",
    "peak_rss_mib",
}


def _original(folder: Path, name: str, title: str, lrc: str | None = None) -> Path:
    path = make_audio_file(folder / name, seconds=4.0, kind="chord")
    media = MediaFile(str(path))
    media.update({"title": title, "artist": "Bench Artist"})
    media.save()
    if lrc is not None:
        path.with_suffix(".lrc").write_text(lrc, encoding="utf-8")
    return path


def test_bench_runs_plugin_against_predictor_with_one_model_load(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    originals = tmp_path / "originals"
    songs = [
        _original(originals, "one.mp3", "One", lrc="[00:00.50]hello there\n[00:02.00]goodbye\n"),
        _original(originals, "two.flac", "Two"),
    ]
    before = {path: path.read_bytes() for path in originals.iterdir()}
    scratch = tmp_path / "scratch"
    json_out = tmp_path / "bench.json"

    status = main(
        [
            *(str(song) for song in songs),
            "--checkpoint",
            str(tiny_checkpoint),
            "--workers",
            "0",
            "--rounds",
            "2",
            "--dir",
            str(scratch),
            "--json-out",
            str(json_out),
        ]
    )

    assert status == 0
    printed = capsys.readouterr().out
    record = json.loads(printed.strip().splitlines()[-1])
    assert json.loads(json_out.read_text()) == record
    assert record.keys() >= RECORD_FIELDS
    assert "overhead, wall (b-a)/a" in printed
    assert record["model"] == TEST_MODEL_VERSION
    assert record["tracks"] == 2
    assert record["rounds"] == 2
    assert len(record["overhead_pct_per_round"]) == 2
    assert [track["file"] for track in record["per_track"]] == ["one.mp3", "two.flac"]
    assert all(track["store_and_write_s"] is not None for track in record["per_track"])
    # The model is loaded once (or found already loaded in this process), never by (b).
    assert record["model_loads_setup"] <= 1
    assert record["model_loads_plugin_run"] == 0
    assert record["text_encoder_loads_plugin_run"] == 0
    # Every track went through the plugin's store-and-write step in each round.
    assert record["plugin_breakdown_calls"]["per_item_store_and_write"] == 2
    assert record["plugin_breakdown_calls"]["tag_writes"] == 2
    assert record["plugin_breakdown_calls"]["db_stores"] == 2
    # Stored in groups: at most one commit per track, at least one per run.
    assert 1 <= record["plugin_breakdown_calls"]["db_commits"] <= 2

    assert record["originals_untouched"] is True
    assert {path: path.read_bytes() for path in originals.iterdir()} == before

    assert record["tracks_stored"] == 2
    assert record["lrc_copied"] == 1
    library = Library(str(scratch / "library.db"), str(scratch / "music"))
    try:
        items = {item.title: item for item in library.items()}
        assert set(items) == {"One", "Two"}
        for item in items.values():
            assert item[fields.MODEL] == TEST_MODEL_VERSION
            assert item[fields.MOOD] in fields.MOODS
            assert Path(item.path.decode()).is_relative_to(scratch / "music")
            assert MediaFile(item.path).mood == item[fields.MOOD]  # tags were written
        assert items["One"][fields.LYRICS_SOURCE] == "lrc"
        assert items["Two"][fields.LYRICS_SOURCE] == "none"
    finally:
        library._close()


class _Loader:
    @classmethod
    def load(cls, value: int) -> tuple[type, int]:
        return cls, value


def test_timed_calls_counts_and_restores_a_classmethod() -> None:
    original = vars(_Loader)["load"]
    timer = CallTimer()
    with timed_calls(_Loader, "load", timer):
        assert _Loader.load(3) == (_Loader, 3)
        assert _Loader().load(4) == (_Loader, 4)
    assert timer.calls == 2 and len(timer.ends) == 2
    assert vars(_Loader)["load"] is original
