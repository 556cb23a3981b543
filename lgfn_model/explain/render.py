"""The pictures, drawn with matplotlib's object API on the Agg canvas.

No pyplot and no ``matplotlib.use()``: nothing here needs a display or changes the backend of
the process that imports it (the beets plugin runs inside the user's ``beet``).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

import matplotlib
import numpy as np
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LinearSegmentedColormap, PowerNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter, MultipleLocator, PercentFormatter

from . import palette
from .info import TrackInfo
from .text import gate_line, lyrics_description
from .timeline import Timeline, format_time

ATTENTION_CMAP = LinearSegmentedColormap.from_list("lgfn_attention", palette.ATTENTION_RAMP)
ATTENTION_GAMMA = 0.5
"""Shading follows the square root of the share: one dominant line does not wash every other
line out to white."""
TRACK_SIZE = (13.0, 9.6)
OVERVIEW_SIZE = (13.5, 7.6)
DPI = 110
LABEL_CHARS = 42
"""Longest lyric line drawn on the timeline (longer ones end with an ellipsis)."""


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


FALLBACK_FONTS = (
    "Noto Sans",
    "Noto Sans CJK JP",
    "Noto Sans CJK SC",
    "Noto Sans CJK KR",
    "Noto Sans Arabic",
    "Noto Sans Hebrew",
    "Noto Sans Devanagari",
    "Noto Sans Thai",
    "WenQuanYi Zen Hei",
    "Droid Sans Fallback",
)
"""Fonts that, when installed, draw what DejaVu Sans has no glyphs for (CJK, Arabic, ...)."""


@cache
def _font_families() -> tuple[str, ...]:
    installed = {font.name for font in font_manager.fontManager.ttflist}
    return ("DejaVu Sans", *(name for name in FALLBACK_FONTS if name in installed))


@contextmanager
def _style() -> Iterator[None]:
    """Text is literal (a ``$`` in a title is not maths), fonts fall back per glyph, and a
    glyph no installed font has is drawn as a box without a warning per character."""
    settings = {"text.parse_math": False, "font.family": list(_font_families())}
    with matplotlib.rc_context(settings), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
        yield


def _fit(text_artist, text: str, limit_px: float, renderer, vertical: bool = False) -> None:
    """Shorten ``text_artist`` (ending it with an ellipsis) until it is at most ``limit_px``
    long along its reading direction."""

    def length(candidate: str) -> float:
        text_artist.set_text(candidate)
        box = text_artist.get_window_extent(renderer)
        return box.height if vertical else box.width

    text = " ".join(text.split())
    if length(text) <= limit_px:
        return
    low, high = 0, len(text)  # the longest prefix that fits lies in [low, high)
    while high - low > 1:
        middle = (low + high) // 2
        if length(text[:middle].rstrip() + "\u2026") <= limit_px:
            low = middle
        else:
            high = middle
    text_artist.set_text(text[:low].rstrip() + "\u2026" if low else "\u2026")


def _exact_colours() -> list[str]:
    """Colours that must come out of the palette PNG exactly as drawn."""
    return [
        *palette.MOOD_COLOURS.values(),
        *palette.FALLBACK_COLOURS,
        palette.AUDIO_COLOUR,
        palette.LYRICS_COLOUR,
        palette.AROUSAL_COLOUR,
        *palette.ATTENTION_RAMP,
        palette.EDGE,
        palette.MUTED,
        "#FFFFFF",
        "#BBBBBB",
        "#AAAAAA",
        "#DDDDDD",
    ]


def _png_bytes(figure: Figure) -> bytes:
    """PNG with a 256-colour palette: the pictures are flat colours and anti-aliased text, so
    this is visually lossless at a third of the size. The palette holds the exact colours of
    :mod:`.palette` (a marker a few pixels big keeps its true colour) plus the colours an
    adaptive median cut picks for the rest; every pixel maps to the nearest."""
    from PIL import Image

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    image = Image.fromarray(rgba[..., :3].copy(), "RGB")  # the figure is opaque white
    exact = list(dict.fromkeys(colour.upper() for colour in _exact_colours()))
    adaptive = image.quantize(
        256 - len(exact), method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )
    colours = (adaptive.getpalette() or [])[: 3 * (256 - len(exact))]
    for colour in exact:
        colours += [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    table = np.array(colours, dtype=np.int32).reshape(-1, 3)
    # Nearest palette colour per distinct pixel colour (PIL's own remapping is approximate:
    # it turned white into 252,252,252); a pixel drawn in an exact colour maps to itself.
    rgb = rgba[..., :3].reshape(-1, 3).astype(np.int32)
    packed = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    distinct, inverse = np.unique(packed, return_inverse=True)
    distinct_rgb = np.stack([(distinct >> 16) & 255, (distinct >> 8) & 255, distinct & 255], 1)
    nearest = np.empty(len(distinct), dtype=np.uint8)
    for start in range(0, len(distinct), 4096):
        chunk = distinct_rgb[start : start + 4096, None, :] - table[None, :, :]
        nearest[start : start + 4096] = (chunk * chunk).sum(-1).argmin(1)
    indices = nearest[inverse].reshape(rgba.shape[:2])
    paletted = Image.fromarray(indices, "P")
    paletted.putpalette([int(v) for v in table.reshape(-1)])
    buffer = io.BytesIO()
    paletted.save(buffer, format="PNG", optimize=True, pnginfo=_png_info())
    return buffer.getvalue()


def _png_info():  # noqa: ANN202 - PIL's PngInfo
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Software", "lgfn explain")
    return info


def _time_step(duration: float) -> float:
    for step in (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600):
        if duration / step <= 12:
            return float(step)
    return 7200.0


def _mood_handles(labels: Sequence[str], markers: bool = False) -> list:
    if markers:
        return [
            Line2D(
                [],
                [],
                linestyle="none",
                marker=palette.mood_marker(label),
                markersize=9,
                markerfacecolor=palette.mood_colour(label, i),
                markeredgecolor=palette.EDGE,
                label=label,
            )
            for i, label in enumerate(labels)
        ]
    return [
        Patch(facecolor=palette.mood_colour(label, i), edgecolor=palette.EDGE, lw=0.5, label=label)
        for i, label in enumerate(labels)
    ]


def _quadrant_labels(ax, labels: Sequence[str], size: float, tint: bool) -> None:
    """Russell's quadrants: Q1 happy (+v, +a), Q2 angry (-v, +a), Q3 sad, Q4 relaxed.

    The plane reaches a little past +-1 so the quadrant names sit outside the range any
    point can take and never hide one.
    """
    reach = 1.2
    corners = [(1, 1), (-1, 1), (-1, -1), (1, -1)]
    for index, (label, (x, y)) in enumerate(zip(labels, corners, strict=False)):
        colour = palette.mood_colour(label, index)
        if tint:
            ax.add_patch(
                Rectangle(
                    (min(0, x * reach), min(0, y * reach)),
                    reach,
                    reach,
                    facecolor=colour,
                    alpha=0.13,
                    lw=0,
                    zorder=0,
                )
            )
        ax.text(
            x * (reach - 0.03),
            y * (reach - 0.03),
            label,
            ha="right" if x > 0 else "left",
            va="top" if y > 0 else "bottom",
            fontsize=size,
            color=palette.MUTED,
            fontweight="bold",
        )
    for edge in (-1, 1):
        ax.axhline(edge, color="#BBBBBB", lw=0.6, linestyle=":", zorder=1)
        ax.axvline(edge, color="#BBBBBB", lw=0.6, linestyle=":", zorder=1)
    ax.axhline(0, color=palette.MUTED, lw=0.8, zorder=1)
    ax.axvline(0, color=palette.MUTED, lw=0.8, zorder=1)
    ax.set_xlim(-reach, reach)
    ax.set_ylim(-reach, reach)
    ax.set_aspect("equal")
    ax.set_xticks([-1, 0, 1])
    ax.set_yticks([-1, 0, 1])


# -- one track -------------------------------------------------------------------------------


def render_track(timeline: Timeline, info: TrackInfo) -> bytes:
    """The track picture as PNG bytes."""
    with _style():
        return _png_bytes(track_figure(timeline, info))


def track_figure(timeline: Timeline, info: TrackInfo) -> Figure:
    """The track picture: header, four panels on the track's time axis, three beside them."""
    with _style():
        return _track_figure(timeline, info)


def _track_figure(timeline: Timeline, info: TrackInfo) -> Figure:
    prediction = timeline.prediction
    labels = timeline.labels
    figure = Figure(figsize=TRACK_SIZE, dpi=DPI)
    FigureCanvasAgg(figure)  # a renderer to measure text with
    grid = figure.add_gridspec(
        4,
        2,
        width_ratios=[3.4, 1.3],
        height_ratios=[1.2, 1.0, 0.75, 2.0],
        left=0.065,
        right=0.985,
        top=0.835,
        bottom=0.065,
        hspace=0.42,
        wspace=0.16,
    )
    figure.text(0.012, 0.978, _clip(info.heading, 90), fontsize=16, fontweight="bold", va="top")
    mood_colour = palette.mood_colour(prediction.mood, labels.index(prediction.mood))
    figure.text(
        0.012,
        0.935,
        f"Mood: {prediction.mood} ({prediction.probabilities[prediction.mood]:.0%})   "
        f"valence {prediction.valence:+.2f}   arousal {prediction.arousal:+.2f}   "
        f"{gate_line(timeline)}",
        fontsize=11.5,
        va="top",
        bbox={
            "boxstyle": "square,pad=0.3",
            "facecolor": "none",
            "edgecolor": mood_colour,
            "linewidth": 2.5,
        },
    )
    figure.text(
        0.012,
        0.898,
        f"Lyrics: {lyrics_description(timeline, info)}   \u00b7   "
        f"length {format_time(prediction.duration)}   \u00b7   model {prediction.model_version}",
        fontsize=10,
        va="top",
        color=palette.MUTED,
    )

    ax_mood = figure.add_subplot(grid[0, 0])
    ax_va = figure.add_subplot(grid[1, 0], sharex=ax_mood)
    ax_gate = figure.add_subplot(grid[2, 0], sharex=ax_mood)
    ax_lyrics = figure.add_subplot(grid[3, 0], sharex=ax_mood)
    _draw_moods(ax_mood, timeline)
    _draw_valence_arousal(ax_va, timeline)
    _draw_gate(ax_gate, timeline)
    if timeline.synced:
        _draw_synced_lyrics(ax_lyrics, timeline, figure)
    elif timeline.has_lyrics:
        _draw_plain_lyrics(ax_lyrics, timeline)
    else:
        _draw_no_lyrics(ax_lyrics)
    step = _time_step(prediction.duration)
    ax_lyrics.xaxis.set_major_locator(MultipleLocator(step))
    ax_lyrics.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: format_time(x)))
    ax_lyrics.set_xlim(0, max(prediction.duration, timeline.step))
    ax_lyrics.set_xlabel("time in the track (m:ss)", fontsize=10)
    for ax in (ax_mood, ax_va, ax_gate):
        ax.tick_params(labelbottom=False)
    for ax in (ax_mood, ax_va, ax_gate, ax_lyrics):
        ax.tick_params(labelsize=9)

    _draw_result_bars(figure.add_subplot(grid[0, 1]), timeline)
    _draw_window_plane(figure.add_subplot(grid[1:3, 1]), timeline)
    _draw_top_lines(figure.add_subplot(grid[3, 1]), timeline, figure)
    return figure


def _panel_title(ax, text: str) -> None:
    ax.set_title(text, loc="left", fontsize=10.5, fontweight="bold", pad=4)


def _step_values(values: np.ndarray) -> np.ndarray:
    return np.append(values, values[-1])


def _draw_moods(ax, timeline: Timeline) -> None:
    edges = timeline.edges
    bottom = np.zeros(len(timeline.starts))
    for index, label in enumerate(timeline.labels):
        top = bottom + timeline.probabilities[:, index]
        ax.fill_between(
            edges,
            _step_values(bottom),
            _step_values(top),
            step="post",
            facecolor=palette.mood_colour(label, index),
            edgecolor="white",
            linewidth=0.4,
        )
        bottom = top
    ax.set_ylim(0, 1)
    ax.set_yticks([0, 0.5, 1])
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    _panel_title(ax, "Mood probabilities, window by window")
    ax.legend(
        handles=_mood_handles(timeline.labels),
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncol=len(timeline.labels),
        frameon=False,
        fontsize=9.5,
        handlelength=1.4,
        borderaxespad=0.1,
    )


def _draw_valence_arousal(ax, timeline: Timeline) -> None:
    edges = timeline.edges
    ax.axhline(0, color=palette.MUTED, lw=0.7)
    ax.step(
        edges,
        _step_values(timeline.valence),
        where="post",
        color=palette.VALENCE_COLOUR,
        lw=1.8,
        label="valence (negative \u2192 positive)",
    )
    ax.step(
        edges,
        _step_values(timeline.arousal),
        where="post",
        color=palette.AROUSAL_COLOUR,
        lw=2.0,
        linestyle=(0, (4, 2)),
        label="arousal (calm \u2192 energetic)",
    )
    ax.set_ylim(-1.08, 1.08)
    ax.set_yticks([-1, 0, 1])
    _panel_title(ax, "Valence and arousal")
    ax.legend(
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncol=2,
        frameon=False,
        fontsize=9.5,
        borderaxespad=0.1,
    )


def _draw_gate(ax, timeline: Timeline) -> None:
    edges = timeline.edges
    gate = _step_values(timeline.gate)
    ax.fill_between(edges, 0, gate, step="post", facecolor=palette.AUDIO_COLOUR, lw=0)
    ax.fill_between(edges, gate, 1, step="post", facecolor=palette.LYRICS_COLOUR, lw=0)
    ax.set_ylim(0, 1)
    ax.set_yticks([0, 0.5, 1])
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    _panel_title(ax, "Gate: who decided, each second")
    ax.legend(
        handles=[
            Patch(facecolor=palette.AUDIO_COLOUR, label="audio share (from below)"),
            Patch(facecolor=palette.LYRICS_COLOUR, label="lyrics share (from above)"),
        ],
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncol=2,
        frameon=False,
        fontsize=9.5,
        borderaxespad=0.1,
    )
    if not timeline.has_lyrics:
        ax.text(
            0.5,
            0.5,
            "no lyrics: the audio alone decided",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=10,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85},
        )


def attention_norm(peak: float) -> PowerNorm:
    """Attention share -> 0..1 for the colour ramp (0 -> white, ``peak`` -> darkest)."""
    return PowerNorm(ATTENTION_GAMMA, vmin=0.0, vmax=peak if peak > 0 else 1.0, clip=True)


def _attention_norm(timeline: Timeline) -> PowerNorm:
    return attention_norm(float(timeline.line_shares.max()) if timeline.has_lyrics else 1.0)


def _draw_synced_lyrics(ax, timeline: Timeline, figure: Figure) -> None:
    norm = _attention_norm(timeline)
    shares = timeline.line_shares
    duration = max(timeline.duration, timeline.step)
    for index, (start, end) in enumerate(
        zip(timeline.line_starts, timeline.line_ends, strict=True)
    ):
        assert start is not None and end is not None
        ax.add_patch(
            Rectangle(
                (start, 0.015),
                max(end - start, 0.2),
                0.1,
                facecolor=ATTENTION_CMAP(norm(shares[index])),
                edgecolor=palette.EDGE,
                linewidth=0.4,
            )
        )
    # Label as many lines as fit side by side, the most attended first.
    box = ax.get_position()
    axis_inches = box.width * figure.get_figwidth()
    min_gap = 0.165 * duration / max(axis_inches, 1e-3)
    placed: list[float] = []
    renderer = figure.canvas.get_renderer()
    room = (ax.transAxes.transform((0, 1))[1] - ax.transAxes.transform((0, 0.16))[1]) - 8
    order = sorted(range(len(shares)), key=lambda i: (-shares[i], i))
    for index in order:
        start = timeline.line_starts[index]
        assert start is not None
        x = min(start, duration - min_gap * 0.6)
        if any(abs(x - other) < min_gap for other in placed):
            continue
        placed.append(x)
        face = ATTENTION_CMAP(norm(shares[index]))
        face_hex = "#{:02X}{:02X}{:02X}".format(*(int(round(c * 255)) for c in face[:3]))
        label = ax.text(
            x,
            0.16,
            "",
            rotation=90,
            ha="left",
            va="bottom",
            fontsize=7.5,
            color=palette.text_colour_on(face_hex),
            bbox={
                "boxstyle": "square,pad=0.18",
                "facecolor": face,
                "edgecolor": "#BBBBBB",
                "linewidth": 0.4,
            },
            clip_on=True,
        )
        _fit(label, timeline.prediction.lyrics_lines[index], room, renderer, vertical=True)
    count = len(shares)
    note = "" if len(placed) == count else f" ({len(placed)} of {count} labelled; bars show all)"
    _panel_title(ax, f"Lyric lines at their timestamps, shaded by attention{note}")
    ax.set_ylim(0, 1)
    ax.set_yticks([])


def _draw_plain_lyrics(ax, timeline: Timeline, rows: int = 12) -> None:
    shares = timeline.line_shares
    chosen = sorted(sorted(range(len(shares)), key=lambda i: (-shares[i], i))[:rows])
    heat = timeline.attention[:, chosen].T
    peak = float(heat.max()) if heat.size and heat.max() > 0 else 1.0
    ax.imshow(
        heat,
        aspect="auto",
        interpolation="nearest",
        cmap=ATTENTION_CMAP,
        norm=attention_norm(peak),
        extent=(0.0, float(timeline.edges[-1]), len(chosen) - 0.5, -0.5),
    )
    ax.set_yticks(range(len(chosen)))
    ax.set_yticklabels([f"#{i + 1}" for i in chosen], fontsize=8)
    which = "every line" if len(chosen) == len(shares) else f"top {len(chosen)} of {len(shares)}"
    ax.set_ylabel(f"line ({which})", fontsize=9)
    _panel_title(ax, "Plain lyrics (not timed): attention per line over time")


def _draw_no_lyrics(ax) -> None:
    ax.set_yticks([])
    ax.set_ylim(0, 1)
    _panel_title(ax, "Lyrics")
    ax.text(
        0.5,
        0.5,
        "No lyrics were found for this track, so there is nothing to align:\n"
        "the gate is 1 everywhere and the mood comes from the sound alone.",
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=10.5,
        color=palette.MUTED,
    )


def _draw_result_bars(ax, timeline: Timeline) -> None:
    prediction = timeline.prediction
    labels = timeline.labels
    values = [prediction.probabilities[label] for label in labels]
    positions = np.arange(len(labels))[::-1]
    ax.barh(
        positions,
        values,
        color=[palette.mood_colour(label, i) for i, label in enumerate(labels)],
        edgecolor=palette.EDGE,
        linewidth=0.6,
        height=0.7,
    )
    for position, value in zip(positions, values, strict=True):
        ax.text(value + 0.02, position, f"{value:.0%}", va="center", fontsize=9.5)
    ax.set_yticks(positions)
    ax.set_yticklabels(labels, fontsize=10)
    for tick, label in zip(ax.get_yticklabels(), labels, strict=True):
        if label == prediction.mood:
            tick.set_fontweight("bold")
    ax.set_xlim(0, 1.18)
    ax.set_xticks([0, 0.5, 1])
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.tick_params(labelsize=9)
    _panel_title(ax, "Track result")


def _draw_window_plane(ax, timeline: Timeline) -> None:
    prediction = timeline.prediction
    labels = timeline.labels
    _quadrant_labels(ax, labels, 8.5, tint=False)
    windows = prediction.windows
    if len(windows) > 1:
        ax.plot(
            [w.valence for w in windows],
            [w.arousal for w in windows],
            color="#AAAAAA",
            lw=0.8,
            zorder=2,
        )
    for window in windows:
        mood = window.mood
        ax.scatter(
            window.valence,
            window.arousal,
            s=28,
            marker=palette.mood_marker(mood),
            facecolor=palette.mood_colour(mood, labels.index(mood)),
            edgecolor=palette.EDGE,
            linewidth=0.5,
            zorder=3,
        )
    ax.scatter(
        prediction.valence,
        prediction.arousal,
        s=200,
        marker=palette.mood_marker(prediction.mood),
        facecolor=palette.mood_colour(prediction.mood, labels.index(prediction.mood)),
        edgecolor="#000000",
        linewidth=2.0,
        zorder=4,
    )
    ax.set_xlabel("valence", fontsize=9.5, labelpad=1)
    ax.set_ylabel("arousal", fontsize=9.5, labelpad=1)
    ax.tick_params(labelsize=8.5)
    _panel_title(ax, "Windows (small) and track (large)")


def _draw_top_lines(ax, timeline: Timeline, figure: Figure, count: int = 9) -> None:
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    _panel_title(ax, "Lines with the most attention")
    lines = timeline.top_lines(count)
    if not lines:
        ax.text(0.0, 0.9, "No lyrics: nothing to attend to.", fontsize=10, color=palette.MUTED)
        return
    norm = _attention_norm(timeline)
    renderer = figure.canvas.get_renderer()
    room = ax.transAxes.transform((1, 0))[0] - ax.transAxes.transform((0.30, 0))[0] + 10
    row = 0.84 / count
    for position, line in enumerate(lines):
        y = 0.97 - (position + 0.5) * row
        face = ATTENTION_CMAP(norm(line.share))
        face_hex = "#{:02X}{:02X}{:02X}".format(*(int(round(c * 255)) for c in face[:3]))
        ax.text(
            0.0,
            y,
            f"{line.share:4.0%}",
            fontsize=8.5,
            va="center",
            ha="left",
            family="monospace",
            color=palette.text_colour_on(face_hex),
            bbox={
                "boxstyle": "square,pad=0.25",
                "facecolor": face,
                "edgecolor": "#BBBBBB",
                "linewidth": 0.4,
            },
        )
        when = format_time(line.start) if line.start is not None else f"#{line.index + 1}"
        ax.text(0.16, y, when, fontsize=8.5, va="center", ha="left", color=palette.MUTED)
        text = ax.text(0.30, y, "", fontsize=8.5, va="center", ha="left")
        _fit(text, line.text, room, renderer)
    colour_axis = ax.inset_axes([0.0, 0.0, 0.62, 0.035])
    gradient = np.linspace(0, 1, 24)[None, :]  # visible steps, not a quantised blur
    colour_axis.imshow(gradient, aspect="auto", cmap=ATTENTION_CMAP, extent=(0, 1, 0, 1))
    colour_axis.set_yticks([])
    peak = float(norm.vmax)
    marks = [0.0, peak / 4, peak]
    colour_axis.set_xticks([float(norm(mark)) for mark in marks])
    colour_axis.set_xticklabels([f"{mark:.0%}" for mark in marks], fontsize=8)
    colour_axis.set_title("attention share (shading)", fontsize=8, pad=2, loc="left")


# -- several tracks --------------------------------------------------------------------------


@dataclass(frozen=True)
class OverviewEntry:
    """One track on the album/playlist picture."""

    label: str
    mood: str
    valence: float
    arousal: float
    gate_lyrics: float


def render_overview(
    entries: Sequence[OverviewEntry], labels: Sequence[str], title: str = ""
) -> bytes:
    """The album/playlist picture as PNG bytes."""
    with _style():
        return _png_bytes(overview_figure(entries, labels, title))


def overview_figure(
    entries: Sequence[OverviewEntry], labels: Sequence[str], title: str = ""
) -> Figure:
    """Every track on the valence-arousal plane: colour and shape by mood, size by the
    lyrics share of the gate, numbered as in the list beside it."""
    with _style():
        return _overview_figure(entries, labels, title)


def _overview_figure(
    entries: Sequence[OverviewEntry], labels: Sequence[str], title: str = ""
) -> Figure:
    figure = Figure(figsize=OVERVIEW_SIZE, dpi=DPI)
    FigureCanvasAgg(figure)  # a renderer to measure text with
    grid = figure.add_gridspec(
        1, 2, width_ratios=[1.0, 0.95], left=0.06, right=0.985, top=0.88, bottom=0.09, wspace=0.1
    )
    count = len(entries)
    heading = title or f"{count} track{'s' if count != 1 else ''} on the valence-arousal plane"
    figure.text(0.012, 0.975, _clip(heading, 100), fontsize=15, fontweight="bold", va="top")
    figure.text(
        0.012,
        0.93,
        "colour and shape: the track's mood   \u00b7   size: how much the lyrics decided "
        "(gate)   \u00b7   numbers: the list on the right",
        fontsize=10,
        va="top",
        color=palette.MUTED,
    )
    ax = figure.add_subplot(grid[0, 0])
    _quadrant_labels(ax, labels, 12, tint=True)
    for number, entry in sorted(
        enumerate(entries, 1), key=lambda pair: -pair[1].gate_lyrics
    ):  # big markers first, so small ones stay visible on top
        index = labels.index(entry.mood) if entry.mood in labels else number
        ax.scatter(
            entry.valence,
            entry.arousal,
            s=_marker_area(entry.gate_lyrics),
            marker=palette.mood_marker(entry.mood),
            facecolor=palette.mood_colour(entry.mood, index),
            edgecolor=palette.EDGE,
            linewidth=1.0,
            zorder=3,
        )
    _number_points(ax, entries, labels)
    ax.set_xlabel("valence: negative \u2192 positive", fontsize=10.5)
    ax.set_ylabel("arousal: calm \u2192 energetic", fontsize=10.5)
    ax.tick_params(labelsize=9.5)

    side = figure.add_subplot(grid[0, 1])
    side.set_axis_off()
    side.set_xlim(0, 1)
    side.set_ylim(0, 1)
    mood_legend = side.legend(
        handles=_mood_handles(labels, markers=True),
        loc="upper left",
        ncol=len(labels),
        frameon=False,
        fontsize=9.5,
        handletextpad=0.3,
        columnspacing=1.0,
        borderaxespad=0.0,
    )
    side.add_artist(mood_legend)
    size_handles = [
        Line2D(
            [],
            [],
            linestyle="none",
            marker="o",
            markersize=float(np.sqrt(_marker_area(share))),
            markerfacecolor="#DDDDDD",
            markeredgecolor=palette.EDGE,
            label=f"lyrics {share:.0%}",
        )
        for share in (0.0, 0.5, 1.0)
    ]
    side.legend(
        handles=size_handles,
        loc="upper left",
        bbox_to_anchor=(0.0, 0.93),
        ncol=3,
        frameon=False,
        fontsize=9.5,
        handletextpad=1.1,
        columnspacing=2.2,
        borderaxespad=0.0,
    )
    shown = entries[:40]
    top, bottom = 0.80, 0.14
    row = min(0.045, (top - bottom) / max(1, len(shown) + (len(entries) > len(shown))))
    size = max(6.5, min(9.5, row * 200))
    renderer = figure.canvas.get_renderer()
    for number, entry in enumerate(shown, 1):
        y = top - (number - 0.5) * row
        side.text(0.0, y, f"{number:>2}", fontsize=size, va="center", ha="right", fontweight="bold")
        stats = side.text(
            1.0,
            y,
            f"{entry.mood:<7} {entry.valence:>+7.2f} {entry.arousal:>+7.2f} "
            f"{entry.gate_lyrics:>6.0%}",
            fontsize=size,
            va="center",
            ha="right",
            family="monospace",
            color=palette.MUTED,
        )
        name = side.text(0.03, y, "", fontsize=size, va="center", ha="left")
        room = stats.get_window_extent(renderer).x0 - side.transAxes.transform((0.03, 0))[0] - 8
        _fit(name, entry.label, room, renderer)
    if len(entries) > len(shown):
        side.text(
            0.03,
            top - (len(shown) + 0.5) * row,
            f"\u2026 and {len(entries) - len(shown)} more",
            fontsize=size,
            va="center",
        )
    side.text(
        1.0,
        top + 0.012,
        f"{'mood':<7} {'valence':>7} {'arousal':>7} {'lyrics':>6}",
        fontsize=size,
        ha="right",
        va="bottom",
        family="monospace",
        color=palette.MUTED,
    )
    side.text(
        0.0,
        0.0,
        "Position: the track's valence and arousal. Colour and shape: its most likely mood.\n"
        "The two come from separate outputs of the model, so a track close to an axis can\n"
        "sit in one quadrant and be coloured as its neighbour.",
        fontsize=9,
        va="bottom",
        ha="left",
        color=palette.MUTED,
        linespacing=1.4,
    )
    return figure


def _number_points(ax, entries: Sequence[OverviewEntry], labels: Sequence[str]) -> None:
    """Each track's number on its marker; a number that would cover another one moves out to
    the first free spot around its point, with a leader line."""
    gap = 0.07  # data units: a two-digit label at 8 pt on this plane is about 0.05 wide
    placed: list[tuple[float, float]] = []
    angles = np.deg2rad([45, 135, 225, 315, 0, 90, 180, 270])
    for number, entry in enumerate(entries, 1):
        x, y = entry.valence, entry.arousal
        spot, moved = (x, y), False
        if any(np.hypot(x - px, y - py) < gap for px, py in placed):
            for radius in (0.1, 0.16, 0.22, 0.3):
                candidates = [
                    (x + radius * np.cos(a), y + radius * np.sin(a))
                    for a in angles
                    if abs(x + radius * np.cos(a)) < 1.1 and abs(y + radius * np.sin(a)) < 1.1
                ]
                free = [
                    c
                    for c in candidates
                    if all(np.hypot(c[0] - px, c[1] - py) >= gap for px, py in placed)
                ]
                if free:
                    spot, moved = free[0], True
                    break
        placed.append(spot)
        index = labels.index(entry.mood) if entry.mood in labels else number
        colour = palette.mood_colour(entry.mood, index)
        if moved:
            ax.plot([x, spot[0]], [y, spot[1]], color=palette.EDGE, lw=0.7, zorder=4)
        ax.text(
            spot[0],
            spot[1],
            str(number),
            ha="center",
            va="center",
            fontsize=8,
            fontweight="bold",
            color="#000000" if moved else palette.text_colour_on(colour),
            bbox={
                "boxstyle": "circle,pad=0.15",
                "facecolor": "white",
                "edgecolor": palette.EDGE,
                "linewidth": 0.6,
            }
            if moved
            else None,
            zorder=5,
        )


def _marker_area(gate_lyrics: float) -> float:
    return 130.0 + 900.0 * min(1.0, max(0.0, gate_lyrics))
