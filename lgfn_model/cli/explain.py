"""``lgfn explain AUDIO... [--lyrics FILE]... [--out DIR] [--text]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lgfn_model.explain.info import TrackInfo, slug, unique_stem


def register(sub: argparse._SubParsersAction) -> None:
    from lgfn_model.cli.common import add_predictor_options

    parser = sub.add_parser(
        "explain",
        help="draw a track's mood timeline, gate and lyric attention (PNG + HTML)",
        description=(
            "Write STEM.png and STEM.html per AUDIO into --out: mood probabilities, valence "
            "and arousal over time, the audio/lyrics gate, and the lyric lines shaded by the "
            "attention they received; with several files also overview.png/.html, the "
            "tracks on the valence-arousal plane. --text prints a plain-text summary "
            "instead (also printed when there is no graphical display). See docs/explain.md."
        ),
    )
    parser.add_argument("audio", nargs="+", help="audio file(s)")
    parser.add_argument(
        "--lyrics",
        action="append",
        default=[],
        metavar="FILE",
        help="lyrics (.lrc synced, .txt plain) for the AUDIO in the same position; "
        "repeat once per file, '' for none",
    )
    parser.add_argument("--out", help="folder for the files (default: the current folder)")
    parser.add_argument(
        "--text", action="store_true", help="print the text summary; write files only with --out"
    )
    parser.add_argument("--title", help="title to show (default: the file's tag or name)")
    parser.add_argument("--artist", help="artist to show (default: the file's tag)")
    add_predictor_options(parser)
    parser.set_defaults(handler=run_explain)


def _tags(path: Path) -> dict[str, str]:
    """Title, artist and album from the file's tags, when mutagen can read them."""
    try:
        import mutagen

        media = mutagen.File(str(path), easy=True)
    except Exception:  # unreadable tags never stop the explanation
        return {}
    found: dict[str, str] = {}
    tags = getattr(media, "tags", None) or {}
    for key in ("title", "artist", "album"):
        try:
            value = tags.get(key)
        except (KeyError, ValueError, TypeError):
            value = None
        if value:
            found[key] = str(value[0] if isinstance(value, list) else value).strip()
    return found


def run_explain(args: argparse.Namespace) -> int:
    from lgfn_model.cli.common import UsageError, load_predictor
    from lgfn_model.data.lyrics import Lyrics, read_lyrics_file

    audio = [Path(a) for a in args.audio]
    if len(args.lyrics) > len(audio):
        raise UsageError("more --lyrics files than AUDIO files")
    if (args.title or args.artist) and len(audio) > 1:
        raise UsageError("--title and --artist need a single AUDIO file")
    lyrics: list[tuple[Lyrics | None, str]] = []
    for index in range(len(audio)):
        name = args.lyrics[index] if index < len(args.lyrics) else ""
        if not name:
            lyrics.append((None, "none"))
            continue
        try:
            parsed = read_lyrics_file(name)
        except OSError as error:
            print(f"lgfn: {name}: cannot read lyrics ({error.strerror})", file=sys.stderr)
            return 1
        lyrics.append((parsed or None, Path(name).name if parsed else "none"))

    write_files = not args.text or bool(args.out)
    out = Path(args.out or ".")
    from lgfn_model.explain.writer import explain_track, has_display, write_overview, write_track

    show_text = args.text or not has_display()
    predictor = load_predictor(args)
    from lgfn_model.runtime.predictor import TrackInput

    inputs = [TrackInput(path, lyrics[i][0], key=i) for i, path in enumerate(audio)]
    done = []
    taken: set[str] = set()
    failures = 0
    for result in predictor.predict_many(inputs):
        index = result.input.key
        path = audio[index]
        if result.prediction is None:
            failures += 1
            print(f"lgfn: {result.error}", file=sys.stderr)
            continue
        tags = _tags(path)
        info = TrackInfo(
            title=args.title or tags.get("title") or path.stem,
            artist=args.artist if args.artist is not None else tags.get("artist", ""),
            album=tags.get("album", ""),
            path=str(path),
            lyrics_source=lyrics[index][1],
        )
        if write_files:
            files = write_track(result.prediction, info, out, unique_stem(slug(path.stem), taken))
            print(f"lgfn: wrote {files.png} and {files.html}")
        else:
            files = explain_track(result.prediction, info)
        if show_text:
            print(files.report())
            print()
        done.append(files)
    if write_files and len(done) > 1:
        png, html = write_overview(done, out, unique_stem("overview", taken))
        print(f"lgfn: wrote {png} and {html}")
    return 1 if failures else 0
