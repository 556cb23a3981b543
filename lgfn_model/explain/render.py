"""What the explain pictures share: sizes, fonts, colours, the PNG writer and the mood legend.

The pictures are drawn with matplotlib's object API on the Agg canvas.

No pyplot and no ``matplotlib.use()``: nothing here needs a display or changes the backend of
the process that imports it (the beets plugin runs inside the user's ``beet``).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache

import matplotlib
import numpy as np
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from lgfn_model.explain import palette

ATTENTION_CMAP = LinearSegmentedColormap.from_list("lgfn_attention", palette.ATTENTION_RAMP)
ATTENTION_GAMMA = 0.5
"""Shading follows the square root of the share: one dominant line does not wash every other
line out to white."""
TRACK_SIZE = (13.0, 9.6)
OVERVIEW_SIZE = (13.5, 7.6)
DPI = 110
LABEL_CHARS = 42
"""Longest lyric line drawn on the timeline (longer ones end with an ellipsis)."""


def clip(text: str, limit: int) -> str:
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
def font_families() -> tuple[str, ...]:
    installed = {font.name for font in font_manager.fontManager.ttflist}
    return ("DejaVu Sans", *(name for name in FALLBACK_FONTS if name in installed))


@contextmanager
def style() -> Iterator[None]:
    """Text is literal (a ``$`` in a title is not maths), fonts fall back per glyph, and a
    glyph no installed font has is drawn as a box without a warning per character."""
    settings = {"text.parse_math": False, "font.family": list(font_families())}
    with matplotlib.rc_context(settings), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
        yield


def fit(text_artist, text: str, limit_px: float, renderer, vertical: bool = False) -> None:
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


def exact_colours() -> list[str]:
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


def png_bytes(figure: Figure) -> bytes:
    """PNG with a 256-colour palette: the pictures are flat colours and anti-aliased text, so
    this is visually lossless at a third of the size. The palette holds the exact colours of
    :mod:`.palette` (a marker a few pixels big keeps its true colour) plus the colours an
    adaptive median cut picks for the rest; every pixel maps to the nearest."""
    from PIL import Image

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    image = Image.fromarray(rgba[..., :3].copy(), "RGB")  # the figure is opaque white
    exact = list(dict.fromkeys(colour.upper() for colour in exact_colours()))
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
    paletted.save(buffer, format="PNG", optimize=True, pnginfo=png_info())
    return buffer.getvalue()


def png_info():  # noqa: ANN202 - PIL's PngInfo
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Software", "lgfn explain")
    return info


def time_step(duration: float) -> float:
    for step in (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600):
        if duration / step <= 12:
            return float(step)
    return 7200.0


def mood_handles(labels: Sequence[str], markers: bool = False) -> list:
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


def quadrant_labels(ax, labels: Sequence[str], size: float, tint: bool) -> None:
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
