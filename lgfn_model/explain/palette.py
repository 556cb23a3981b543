"""Colours used by every picture: Okabe-Ito (safe for the common colour-vision deficiencies).

Each mood keeps one colour everywhere (timeline, bars, valence-arousal plane) and, on the
plane, one marker shape too, so colour is never the only cue. Audio and lyrics shares (the
gate) use sky blue and orange; attention over lyric lines is a white-to-orange ramp (the
lyrics colour: more orange, more attention).
"""

from __future__ import annotations

MOOD_COLOURS: dict[str, str] = {
    "happy": "#F0E442",  # yellow
    "angry": "#D55E00",  # vermillion
    "sad": "#0072B2",  # blue
    "relaxed": "#009E73",  # bluish green
}
MOOD_MARKERS: dict[str, str] = {"happy": "o", "angry": "^", "sad": "v", "relaxed": "s"}
FALLBACK_COLOURS = ("#CC79A7", "#56B4E9", "#E69F00", "#000000")
"""For labels a future model might add."""

AUDIO_COLOUR = "#56B4E9"  # sky blue
LYRICS_COLOUR = "#E69F00"  # orange
VALENCE_COLOUR = "#000000"
AROUSAL_COLOUR = "#CC79A7"  # reddish purple (and dashed)
ATTENTION_RAMP = ("#FFFFFF", "#F7D58B", "#E69F00", "#8C5A00")
"""White -> orange -> dark orange: attention share 0 -> the track's highest."""
EDGE = "#222222"
MUTED = "#666666"


def mood_colour(mood: str, index: int = 0) -> str:
    return MOOD_COLOURS.get(mood, FALLBACK_COLOURS[index % len(FALLBACK_COLOURS)])


def mood_marker(mood: str) -> str:
    return MOOD_MARKERS.get(mood, "D")


def text_colour_on(hex_colour: str) -> str:
    """Black or white, whichever reads better on ``hex_colour``."""
    red, green, blue = (int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    return "#000000" if luminance > 0.45 else "#FFFFFF"
