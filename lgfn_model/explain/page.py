"""HTML pages: self-contained (the PNG is embedded as a ``data:`` URI, the style inline), so one
file can be mailed or moved on its own. Every piece of metadata is escaped."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from html import escape
from urllib.parse import quote

from lgfn_model.explain import palette
from lgfn_model.explain.info import TrackInfo
from lgfn_model.explain.overview_picture import OverviewEntry
from lgfn_model.explain.render import ATTENTION_CMAP
from lgfn_model.explain.text import gate_line, lyrics_description, result_line, whole_text_line
from lgfn_model.explain.timeline import Timeline, format_time
from lgfn_model.explain.track_picture import attention_norm

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1320px;
       color: #111; background: #fff; line-height: 1.4; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0 1em; }
th, td { text-align: left; padding: .2em .8em .2em 0; vertical-align: top; }
th { color: #555; font-weight: normal; }
img { max-width: 100%; height: auto; border: 1px solid #ddd; }
td.share { font-family: monospace; text-align: right; padding-right: .6em; }
.muted { color: #555; }
""".strip()


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _document(title: str, body: list[str]) -> str:
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="generator" content="lgfn explain">',
            f"<title>{escape(title)}</title>",
            f"<style>{STYLE}</style>",
            "</head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
            "",
        ]
    )


def _rows(pairs: Sequence[tuple[str, str]]) -> list[str]:
    return [f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in pairs if v]


def _hex(rgba: tuple[float, ...]) -> str:
    return "#{:02X}{:02X}{:02X}".format(*(int(round(c * 255)) for c in rgba[:3]))


def track_page(timeline: Timeline, info: TrackInfo, png: bytes) -> str:
    """The track's page: metadata, the picture, the lyric lines with their attention share."""
    prediction = timeline.prediction
    metadata = [
        ("Title", info.title),
        ("Artist", info.artist),
        ("Album", info.album),
        ("File", info.path),
        ("Length", format_time(prediction.duration)),
        *info.extra.items(),
        ("Result", result_line(timeline)),
        ("Gate", gate_line(timeline)),
        ("Lyrics", lyrics_description(timeline, info)),
        ("Model", prediction.model_version),
    ]
    alt = (
        f"Mood timeline of {info.heading}: {result_line(timeline)}; {gate_line(timeline)}; "
        f"lyrics: {lyrics_description(timeline, info)}"
    )
    body = [
        f"<h1>{escape(info.heading)}</h1>",
        '<table class="meta">',
        *_rows(metadata),
        "</table>",
        f'<img src="{_data_uri(png)}" alt="{escape(alt)}">',
        "<h2>Mood per minute</h2>",
        "<table>",
        "<tr><th>time</th><th>mood</th><th>probability</th><th>audio</th><th>lyrics</th></tr>",
    ]
    for minute in timeline.mood_per_minute():
        body.append(
            f"<tr><td>{format_time(minute.start)}\u2013{format_time(minute.end)}</td>"
            f"<td>{escape(minute.mood)}</td><td>{minute.probability:.2f}</td>"
            f"<td>{minute.gate_audio:.0%}</td><td>{1 - minute.gate_audio:.0%}</td></tr>"
        )
    body.append("</table>")
    body.append("<h2>Lyric lines and the attention they received</h2>")
    if not timeline.has_lyrics:
        body.append('<p class="muted">No lyrics: the audio alone decided.</p>')
    else:
        norm = attention_norm(float(timeline.line_shares.max()))
        if timeline.reads_whole_text:
            body.append(f"<p>{escape(whole_text_line(timeline))}.</p>")
        body += ['<table class="lyrics">', "<tr><th>share</th><th>time</th><th>line</th></tr>"]
        for index, text in enumerate(prediction.lyrics_lines):
            share = float(timeline.line_shares[index])
            face = _hex(ATTENTION_CMAP(float(norm(share))))
            start = timeline.line_starts[index]
            when = format_time(start) if start is not None else f"#{index + 1}"
            body.append(
                f'<tr><td class="share" style="background:{face};'
                f'color:{palette.text_colour_on(face)}">{share:.1%}</td>'
                f"<td>{when}</td><td>{escape(text)}</td></tr>"
            )
        body.append("</table>")
    return _document(info.heading, body)


def overview_page(
    entries: Sequence[OverviewEntry], pages: Sequence[str | None], png: bytes, title: str
) -> str:
    """The album/playlist page: the plane and the list of tracks, linked to their pages."""
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<img src="{_data_uri(png)}" alt="{escape(title)}: tracks on the valence-arousal plane">',
        "<table>",
        "<tr><th>#</th><th>track</th><th>mood</th><th>valence</th><th>arousal</th>"
        "<th>lyrics share</th></tr>",
    ]
    for number, (entry, page) in enumerate(zip(entries, pages, strict=True), 1):
        name = escape(entry.label)
        if page:
            name = f'<a href="{escape(quote(page))}">{name}</a>'
        body.append(
            f"<tr><td>{number}</td><td>{name}</td><td>{escape(entry.mood)}</td>"
            f"<td>{entry.valence:+.2f}</td><td>{entry.arousal:+.2f}</td>"
            f"<td>{entry.gate_lyrics:.0%}</td></tr>"
        )
    body.append("</table>")
    return _document(title, body)
