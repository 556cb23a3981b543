"""The album or playlist picture: tracks placed on the valence-arousal plane, coloured by
mood, sized by how much the lyrics weighed (Agg canvas, see :mod:`lgfn_model.explain.render`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from lgfn_model.explain import palette
from lgfn_model.explain.render import (
    DPI,
    OVERVIEW_SIZE,
    clip,
    fit,
    mood_handles,
    png_bytes,
    quadrant_labels,
    style,
)

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
    with style():
        return png_bytes(overview_figure(entries, labels, title))


def overview_figure(
    entries: Sequence[OverviewEntry], labels: Sequence[str], title: str = ""
) -> Figure:
    """Every track on the valence-arousal plane: colour and shape by mood, size by the
    lyrics share of the gate, numbered as in the list beside it."""
    with style():
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
    figure.text(0.012, 0.975, clip(heading, 100), fontsize=15, fontweight="bold", va="top")
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
    quadrant_labels(ax, labels, 12, tint=True)
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
        handles=mood_handles(labels, markers=True),
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
        fit(name, entry.label, room, renderer)
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
