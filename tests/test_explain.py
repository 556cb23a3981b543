"""`lgfn explain`: timeline maths, the track and overview pictures, HTML pages, text report.

Predictions come from the real (tiny, random) model on synthesised audio; the lyrics encoder
is replaced by a hashing stand-in so no 100 MB encoder loads (its values do not matter here).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from audio_factory import make_audio_file
from PIL import Image

from lgfn_model.data.lyrics import parse_lrc, parse_plain
from lgfn_model.explain import (
    TrackInfo,
    build_timeline,
    overview_figure,
    text_report,
    track_figure,
    write_overview,
    write_track,
)
from lgfn_model.explain.overview_picture import OverviewEntry
from lgfn_model.explain.render import DPI, OVERVIEW_SIZE, TRACK_SIZE
from lgfn_model.model.outputs import TrackPrediction, WindowPrediction
from lgfn_model.runtime.checkpoint import load_checkpoint
from lgfn_model.runtime.predictor import Predictor
from lgfn_model.testing import write_tiny_checkpoint

LRC = (
    "[00:00.50]the sun is shining\n[00:02.00]we dance all night\n"
    "[00:03.50]happy days are here\n[00:05.00]and the night is young\n"
)
PLAIN = "the sun is shining\nwe dance all night\nhappy days are here\nand the night is young\n"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class HashEncoder:
    """Stands in for the lyrics encoder: a fixed pseudo-random unit vector per line."""

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def encode(self, lines: list[str]) -> torch.Tensor:
        rows = []
        for line in lines:
            seed = int.from_bytes(hashlib.sha256(line.encode()).digest()[:4], "little")
            row = torch.randn(self.dim, generator=torch.Generator().manual_seed(seed))
            rows.append(row / row.norm())
        return torch.stack(rows)


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    torch.set_num_threads(1)
    checkpoint = write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny")
    model = load_checkpoint(checkpoint, device="cpu")
    return Predictor(
        model, torch.device("cpu"), workers=0, text_encoder=HashEncoder(model.config.text_dim)
    )


@pytest.fixture(scope="module")
def song(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 7 s with the tiny model's 2 s windows: 4 windows, the last one overlapping.
    return make_audio_file(tmp_path_factory.mktemp("songs") / "song.flac", 7.0, kind="chord")


@pytest.fixture(scope="module")
def predictions(predictor: Predictor, song: Path) -> dict[str, TrackPrediction]:
    return {
        "synced": predictor.predict(song, parse_lrc(LRC)),
        "plain": predictor.predict(song, parse_plain(PLAIN)),
        "none": predictor.predict(song),
    }


def _window(start: float, p_happy: float, gate: list[float], attention) -> WindowPrediction:
    rest = (1 - p_happy) / 3
    return WindowPrediction(
        start=start,
        end=start + 2.0,
        probabilities={"happy": p_happy, "angry": rest, "sad": rest, "relaxed": rest},
        valence=p_happy,
        arousal=-p_happy,
        gate=gate,
        attention=attention,
    )


def test_timeline_averages_overlapping_windows_and_shares_attention() -> None:
    # Two 2 s windows of 2 frames over a 3 s track: [0, 2) and [1, 3) overlap on [1, 2).
    prediction = TrackPrediction(
        mood="happy",
        probabilities={"happy": 0.5, "angry": 0.2, "sad": 0.2, "relaxed": 0.1},
        valence=0.5,
        arousal=-0.5,
        gate_audio=0.55,
        gate_lyrics=0.45,
        duration=3.0,
        model_version="test",
        lyrics_lines=["one", "two"],
        lyrics_synced=True,
        lyrics_starts=[0.2, 1.5],
        windows=[
            _window(0.0, 0.8, [0.2, 0.4], [[1.0, 0.0], [0.5, 0.5]]),
            _window(1.0, 0.4, [0.6, 1.0], [[0.0, 1.0], [0.0, 1.0]]),
        ],
    )
    timeline = build_timeline(prediction)
    assert timeline.step == pytest.approx(1.0)
    assert timeline.starts.tolist() == [0.0, 1.0, 2.0]
    assert timeline.probabilities[:, 0].tolist() == pytest.approx([0.8, 0.6, 0.4])
    assert timeline.gate.tolist() == pytest.approx([0.2, 0.5, 1.0])
    assert timeline.valence.tolist() == pytest.approx([0.8, 0.6, 0.4])
    np.testing.assert_allclose(timeline.attention, [[1, 0], [0.25, 0.75], [0, 1]])
    assert timeline.line_shares.tolist() == pytest.approx([1.25 / 3, 1.75 / 3])
    assert timeline.line_starts == [0.2, 1.5]
    assert timeline.line_ends == pytest.approx([1.5, 3.0])
    [minute] = timeline.mood_per_minute()
    assert (minute.mood, minute.start, minute.end) == ("happy", 0.0, 3.0)
    assert minute.probability == pytest.approx(0.6)
    top = timeline.top_lines(5)
    assert [line.text for line in top] == ["two", "one"]
    assert top[0].start == 1.5


def test_predictor_carries_line_start_times(predictions: dict[str, TrackPrediction]) -> None:
    assert predictions["synced"].lyrics_starts == [0.5, 2.0, 3.5, 5.0]
    assert predictions["plain"].lyrics_starts == [None] * 4
    assert predictions["none"].lyrics_starts == []


def _figure_texts(figure) -> list[str]:
    texts = [t.get_text() for t in figure.texts]
    for ax in figure.axes:
        texts += [t.get_text() for t in ax.texts]
        texts += [ax.get_title(loc="left"), ax.get_xlabel(), ax.get_ylabel()]
        texts += [t.get_text() for t in ax.get_yticklabels()]
        legend = ax.get_legend()
        if legend is not None:
            texts += [t.get_text() for t in legend.get_texts()]
    return texts


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:  # noqa: ANN001 - HTMLParser's signature
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def _pixels(inches: tuple[float, float]) -> tuple[int, int]:
    return round(inches[0] * DPI), round(inches[1] * DPI)


def _check_png(path: Path, size: tuple[int, int]) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == size
    assert len(data) < 300_000


@pytest.mark.parametrize("kind", ["synced", "plain", "none"])
def test_track_picture_and_page(
    kind: str, predictions: dict[str, TrackPrediction], tmp_path: Path
) -> None:
    prediction = predictions[kind]
    info = TrackInfo("Song <b>&</b> $x^2$", 'The "Band"', "Album", "/music/song.flac", "lrc")
    files = write_track(prediction, info, tmp_path / "out", "song")
    assert files.png == tmp_path / "out" / "song.png"
    _check_png(files.png, _pixels(TRACK_SIZE))

    texts = _figure_texts(track_figure(files.timeline, info))
    joined = "\n".join(texts)
    for panel in ("Mood probabilities", "Valence and arousal", "Gate", "Track result"):
        assert panel in joined
    for mood in ("happy", "angry", "sad", "relaxed"):
        assert mood in texts  # the legend
    assert "audio share (from below)" in texts and "lyrics share (from above)" in texts
    assert f"model {prediction.model_version}" in joined
    assert 'Song <b>&</b> $x^2$ \u2014 The "Band"' in texts  # literal, not maths
    if kind == "synced":
        assert "Lyric lines at their timestamps, shaded by attention" in texts
        assert "lrc (synced, 4 lines)" in joined
        assert set(LRC_LINES) <= set(texts)  # every line labelled at its time (they fit)
    elif kind == "plain":
        assert "Plain lyrics (not timed): attention per line over time" in texts
        assert {"#1", "#2", "#3", "#4"} <= set(texts)
        assert "lrc (plain, not timed, 4 lines)" in joined
    else:
        assert "no lyrics: the audio alone decided" in texts
        assert "Lyrics: none (the audio alone decided)" in joined

    page = _parse(files.html)
    images = [attrs for tag, attrs in page.tags if tag == "img"]
    assert len(images) == 1 and images[0]["src"].startswith("data:image/png;base64,")
    assert images[0]["alt"]
    html = files.html.read_text(encoding="utf-8")
    assert "<b>" not in html and "Song &lt;b&gt;&amp;&lt;/b&gt; $x^2$" in html
    assert "The &quot;Band&quot;" in html
    text = "".join(page.text)
    assert "Mood per minute" in text and prediction.mood in text
    lyric_rows = html.count('<td class="share"')
    assert lyric_rows == (0 if kind == "none" else 4)
    assert "matplotlib.pyplot" not in sys.modules  # drawn without pyplot: no backend chosen


LRC_LINES = ["the sun is shining", "we dance all night", "happy days are here"]


def test_overview_picture_and_page(predictions: dict[str, TrackPrediction], tmp_path: Path) -> None:
    out = tmp_path / "out"
    tracks = [
        write_track(prediction, TrackInfo(f"Track {kind}", "Artist"), out, f"t-{kind}")
        for kind, prediction in predictions.items()
    ]
    png, html = write_overview(tracks, out, title="My <playlist>")
    _check_png(png, _pixels(OVERVIEW_SIZE))
    page = _parse(html)
    links = [attrs["href"] for tag, attrs in page.tags if tag == "a"]
    assert links == ["t-synced.html", "t-plain.html", "t-none.html"]
    assert all((out / link).is_file() for link in links)
    assert "My &lt;playlist&gt;" in html.read_text(encoding="utf-8")

    entries = [track.overview_entry() for track in tracks]
    texts = _figure_texts(overview_figure(entries, ["happy", "angry", "sad", "relaxed"]))
    assert {"1", "2", "3"} <= set(texts)  # numbers on the markers
    assert "Track synced \u2014 Artist" in texts
    assert {"lyrics 0%", "lyrics 50%", "lyrics 100%"} <= set(texts)  # size legend
    assert "3 tracks on the valence-arousal plane" in texts
    assert entries[2].gate_lyrics == 0.0  # no lyrics: the smallest marker


def test_overview_moves_numbers_of_tracks_at_the_same_spot() -> None:
    entries = [OverviewEntry(f"t{i}", "sad", -0.5, -0.5, 0.2) for i in range(3)]
    figure = overview_figure(entries, ["happy", "angry", "sad", "relaxed"])
    plane = figure.axes[0]
    spots = {t.get_text(): t.get_position() for t in plane.texts if t.get_text().isdigit()}
    assert len(spots) == 3
    points = list(spots.values())
    for i, a in enumerate(points):
        for b in points[i + 1 :]:
            assert np.hypot(a[0] - b[0], a[1] - b[1]) >= 0.07


def test_attention_the_lines_lack_went_to_the_whole_text_and_is_reported() -> None:
    # A song_text model's rows hold the lines' part of each frame's attention only: here a
    # quarter of it, then three quarters; the whole text drew the rest (half, on average).
    prediction = TrackPrediction(
        mood="sad",
        probabilities={"happy": 0.1, "angry": 0.1, "sad": 0.6, "relaxed": 0.2},
        valence=-0.5,
        arousal=-0.5,
        gate_audio=0.4,
        gate_lyrics=0.6,
        duration=2.0,
        model_version="test-song-text",
        lyrics_lines=["one", "two"],
        lyrics_synced=False,
        windows=[_window(0.0, 0.1, [0.4, 0.4], [[0.25, 0.0], [0.25, 0.5]])],
    )
    timeline = build_timeline(prediction)
    assert timeline.whole_text_share == pytest.approx(0.5)
    assert timeline.reads_whole_text
    assert timeline.line_shares.tolist() == pytest.approx([0.5, 0.5])  # shares of the rest
    report = text_report(timeline, TrackInfo("Song"))
    assert "the whole lyrics, read as one text, drew 50.0% of the attention" in report
    lines = report.splitlines()
    assert lines.index("  lyric lines by attention:") == len(lines) - 3
    # Lines alone (rows summing to 1): nothing went elsewhere, nothing is said.
    rows_of_one = [_window(0.0, 0.1, [0.4, 0.4], [[1.0, 0.0], [0.5, 0.5]])]
    alone = build_timeline(dataclasses.replace(prediction, windows=rows_of_one))
    assert alone.whole_text_share == pytest.approx(0.0) and not alone.reads_whole_text
    assert "whole lyrics" not in text_report(alone, TrackInfo("Song"))


def test_text_report(predictions: dict[str, TrackPrediction]) -> None:
    timeline = build_timeline(predictions["synced"])
    report = text_report(timeline, TrackInfo("Song", "Band", lyrics_source="lrc"))
    lines = report.splitlines()
    assert lines[0].startswith("Song \u2014 Band (0:07, model lgfn-test-tiny)")
    assert "decided by the audio" in report and "by the lyrics" in report
    assert "lyrics: lrc (synced, 4 lines)" in report
    assert "mood per minute:" in report and "0:00-0:07" in report
    assert "lyric lines by attention:" in report
    ranked = lines[lines.index("  lyric lines by attention:") + 1 :]
    assert len(ranked) == 4
    shares = [float(line.split("%")[0]) for line in ranked]
    assert shares == sorted(shares, reverse=True) and sum(shares) == pytest.approx(100, abs=0.3)
    none = text_report(build_timeline(predictions["none"]), TrackInfo("Song"))
    assert "lyrics: none" in none and "lyric lines by attention" not in none


def test_cli_writes_files_and_prints_text(
    predictor: Predictor,
    song: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from lgfn_model import cli
    from lgfn_model.cli import common

    monkeypatch.setattr(common, "load_predictor", lambda args: predictor)
    lrc = tmp_path / "song.lrc"
    lrc.write_text(LRC, encoding="utf-8")
    monkeypatch.setenv("DISPLAY", ":0")
    out = tmp_path / "pictures"
    code = cli.main(["explain", str(song), str(song), "--lyrics", str(lrc), "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        "overview.html",
        "overview.png",
        "song-2.html",
        "song-2.png",
        "song.html",
        "song.png",
    ]
    assert "lyric lines by attention" not in printed  # a display: files only
    assert "song.lrc (synced, 4 lines)" in (out / "song.html").read_text(encoding="utf-8")

    # --text alone: the report, no files; without a display the report comes with the files.
    code = cli.main(["explain", str(song), "--lyrics", str(lrc), "--text"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "lyric lines by attention:" in printed and "wrote" not in printed
    assert not list(tmp_path.glob("*.png"))
    monkeypatch.delenv("DISPLAY")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    code = cli.main(["explain", str(song), "--out", str(tmp_path / "headless")])
    printed = capsys.readouterr().out
    assert code == 0 and "mood per minute:" in printed and "wrote" in printed
    assert (tmp_path / "headless" / "song.png").is_file()


def test_cli_reports_a_bad_file(
    predictor: Predictor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from lgfn_model import cli
    from lgfn_model.cli import common

    monkeypatch.setattr(common, "load_predictor", lambda args: predictor)
    bad = tmp_path / "bad.mp3"
    bad.write_text("not audio")
    assert cli.main(["explain", str(bad), "--out", str(tmp_path / "o")]) == 1
    assert "bad.mp3" in capsys.readouterr().err
