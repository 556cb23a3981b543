"""The picture of one track: the mood timeline, valence and arousal, the gate, the lyric lines
the model attended to and the per-window plane (drawn on the Agg canvas, as
:mod:`lgfn_model.explain.render`)."""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter, MultipleLocator, PercentFormatter

from lgfn_model.explain import palette
from lgfn_model.explain.info import TrackInfo
from lgfn_model.explain.render import (
    ATTENTION_CMAP,
    ATTENTION_GAMMA,
    DPI,
    TRACK_SIZE,
    clip,
    fit,
    mood_handles,
    png_bytes,
    quadrant_labels,
    style,
    time_step,
)
from lgfn_model.explain.text import gate_line, lyrics_description
from lgfn_model.explain.timeline import Timeline, format_time

# -- one track -------------------------------------------------------------------------------


def render_track(timeline: Timeline, info: TrackInfo) -> bytes:
    """The track picture as PNG bytes."""
    with style():
        return png_bytes(track_figure(timeline, info))


def track_figure(timeline: Timeline, info: TrackInfo) -> Figure:
    """The track picture: header, four panels on the track's time axis, three beside them."""
    with style():
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
    figure.text(0.012, 0.978, clip(info.heading, 90), fontsize=16, fontweight="bold", va="top")
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
    step = time_step(prediction.duration)
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
        handles=mood_handles(timeline.labels),
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
        fit(label, timeline.prediction.lyrics_lines[index], room, renderer, vertical=True)
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
    quadrant_labels(ax, labels, 8.5, tint=False)
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
        fit(text, line.text, room, renderer)
    colour_axis = ax.inset_axes([0.0, 0.0, 0.62, 0.035])
    gradient = np.linspace(0, 1, 24)[None, :]  # visible steps, not a quantised blur
    colour_axis.imshow(gradient, aspect="auto", cmap=ATTENTION_CMAP, extent=(0, 1, 0, 1))
    colour_axis.set_yticks([])
    peak = float(norm.vmax)
    marks = [0.0, peak / 4, peak]
    colour_axis.set_xticks([float(norm(mark)) for mark in marks])
    colour_axis.set_xticklabels([f"{mark:.0%}" for mark in marks], fontsize=8)
    scale = "attention share (shading)"
    if timeline.reads_whole_text:  # the title has no room for this; the scale's line has
        scale = f"share of the {1 - timeline.whole_text_share:.1%} not on the whole text (shading)"
    colour_axis.set_title(scale, fontsize=8, pad=2, loc="left")
