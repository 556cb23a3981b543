"""The plain-text explanation, for terminals without a display (or ``--text``)."""

from __future__ import annotations

from lgfn_model.explain.info import TrackInfo
from lgfn_model.explain.timeline import Timeline, format_time


def lyrics_description(timeline: Timeline, info: TrackInfo) -> str:
    lines = len(timeline.prediction.lyrics_lines)
    if not lines:
        return "none (the audio alone decided)"
    kind = "synced" if timeline.synced else "plain, not timed"
    source = info.lyrics_source if info.lyrics_source not in ("", "none") else "given"
    return f"{source} ({kind}, {lines} line{'s' if lines != 1 else ''})"


def result_line(timeline: Timeline) -> str:
    prediction = timeline.prediction
    probabilities = ", ".join(f"{mood} {p:.2f}" for mood, p in prediction.probabilities.items())
    return (
        f"mood {prediction.mood} ({probabilities}); valence {prediction.valence:+.2f}, "
        f"arousal {prediction.arousal:+.2f}"
    )


def gate_line(timeline: Timeline) -> str:
    prediction = timeline.prediction
    return (
        f"decided by the audio {prediction.gate_audio:.0%}, "
        f"by the lyrics {prediction.gate_lyrics:.0%}"
    )


def text_report(timeline: Timeline, info: TrackInfo, top: int = 8, width: int = 72) -> str:
    """A few lines: the result, the gate, where the lyrics came from, the mood per minute and
    the lyric lines that drew the most attention."""
    prediction = timeline.prediction
    out = [
        f"{info.heading} ({format_time(prediction.duration)}, model {prediction.model_version})",
        f"  {result_line(timeline)}",
        f"  {gate_line(timeline)}",
        f"  lyrics: {lyrics_description(timeline, info)}",
        "  mood per minute:",
    ]
    for minute in timeline.mood_per_minute():
        out.append(
            f"    {format_time(minute.start):>5}-{format_time(minute.end):<5} "
            f"{minute.mood:<8} {minute.probability:.2f}   audio {minute.gate_audio:.0%}, "
            f"lyrics {1 - minute.gate_audio:.0%}"
        )
    lines = timeline.top_lines(top)
    if lines:
        if timeline.reads_whole_text:
            out.append(f"  {whole_text_line(timeline)}")
        out.append("  lyric lines by attention:")
        for line in lines:
            when = format_time(line.start) if line.start is not None else f"#{line.index + 1}"
            text = line.text if len(line.text) <= width else line.text[: width - 1] + "\u2026"
            out.append(f"    {line.share:6.1%}  {when:>5}  {text}")
    return "\n".join(out)


def whole_text_line(timeline: Timeline) -> str:
    """How much of the attention the whole text drew, which the line shares leave out."""
    return (
        f"the whole lyrics, read as one text, drew {timeline.whole_text_share:.1%} of the "
        "attention; the shares below are of the rest"
    )
