"""`lgfn predict`: one audio file as a JSON object, or a manifest CSV as JSON lines."""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lgfn_model.cli.common import UsageError, add_predictor_options, load_predictor
from lgfn_model.data.lyrics_files import FoundLyrics


def register(sub: argparse._SubParsersAction) -> None:
    predict = sub.add_parser(
        "predict",
        help="predict mood, valence and arousal of tracks",
        description="Print one JSON object for AUDIO, or write JSON lines for a manifest.",
    )
    predict.add_argument("audio", nargs="?", help="an audio file")
    predict.add_argument(
        "--lyrics",
        help="lyrics for AUDIO: a .txt (plain) or .lrc (synced) file (default: song.lrc beside "
        "AUDIO, else lyrics embedded in it)",
    )
    predict.add_argument(
        "--manifest",
        help="CSV with columns id,audio,lyrics (an empty lyrics cell: found as for AUDIO)",
    )
    predict.add_argument(
        "--no-find-lyrics",
        dest="find_lyrics",
        action="store_false",
        help="use only --lyrics or the manifest's lyrics column: no .lrc beside the audio, "
        "no embedded lyrics",
    )
    predict.add_argument("--out", help="JSON-lines output for --manifest (default: stdout)")
    predict.add_argument(
        "--windows", action="store_true", help="include per-window results (single file only)"
    )
    add_predictor_options(predict)
    predict.set_defaults(handler=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    if bool(args.audio) == bool(args.manifest):
        raise UsageError("give either AUDIO or --manifest FILE.csv")
    if args.manifest:
        return predict_manifest(args)
    found = find_lyrics(args.audio, args.lyrics, args.find_lyrics)
    if args.lyrics and found.errors:
        print(f"lgfn: {found.errors[0]}", file=sys.stderr)  # the lyrics asked for are unusable
        return 1
    for reason in found.errors:
        print(f"lgfn: warning: {reason}", file=sys.stderr)
    if args.lyrics and found.lyrics is None:
        print(
            f"lgfn: warning: {args.lyrics}: no lyrics in it (empty, or not text); "
            "predicting from the audio alone",
            file=sys.stderr,
        )
    predictor = load_predictor(args)
    from lgfn_model.data.audio import AudioDecodeError

    try:
        prediction = predictor.predict(args.audio, found.lyrics)
    except AudioDecodeError as error:
        print(f"lgfn: {error}", file=sys.stderr)
        return 1
    problem = non_finite(prediction)
    if problem:
        print(f"lgfn: {args.audio}: {problem}", file=sys.stderr)
        return 1
    record = {"audio": args.audio, **prediction_record(prediction, found.source)}
    if args.windows:
        record["windows"] = [w.__dict__ for w in prediction.windows]
    try:
        line = json.dumps(record, ensure_ascii=False, allow_nan=False)
    except ValueError:  # a window's NaN (the track's values are finite): never print NaN
        print(f"lgfn: {args.audio}: the model gave a non-finite per-window result", file=sys.stderr)
        return 1
    print(line)
    return 0


def find_lyrics(audio: str | Path, given: str | None, search: bool) -> FoundLyrics:
    """The lyrics ``lgfn predict`` uses: the given file, else (with ``search``) the ``.lrc``
    beside the audio, else the embedded ones: the beets plugin's order for these sources."""
    from lgfn_model.data import lyrics_files

    sources = lyrics_files.FILE_SOURCES if search else ()
    return lyrics_files.find_lyrics(audio, given, sources)


def prediction_record(prediction: Any, lyrics_source: str) -> dict[str, Any]:
    """The fields every prediction record carries, single file and manifest alike."""
    return {
        **prediction.summary(),
        "model": prediction.model_version,
        "lyrics_source": lyrics_source,
        "lyrics_lines": len(prediction.lyrics_lines),
        "lyrics_synced": prediction.lyrics_synced,
    }


def non_finite(prediction: Any) -> str | None:
    """Why a prediction cannot be printed (NaN or infinity in it), or None when it can.

    JSON has no NaN: ``json.dumps`` would print the bare word ``NaN``, which strict readers
    (and every other language's JSON parser) reject, so such a result is an error instead.
    """
    values = {
        **prediction.probabilities,
        "valence": prediction.valence,
        "arousal": prediction.arousal,
        "gate_audio": prediction.gate_audio,
        "gate_lyrics": prediction.gate_lyrics,
    }
    bad = [f"{name} {float(v)}" for name, v in values.items() if not math.isfinite(float(v))]
    return f"the model gave a non-finite result ({', '.join(bad)})" if bad else None


def read_manifest(path: Path) -> Iterator[tuple[str, Path, str | None]]:
    """Rows of (id, audio path, lyrics path or None); relative paths are from the CSV's folder."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"id", "audio"} <= set(reader.fieldnames):
            raise UsageError(f"{path}: a manifest needs the columns id,audio[,lyrics]")
        for row in reader:
            audio = path.parent / (row.get("audio") or "").strip()
            lyrics = (row.get("lyrics") or "").strip()
            yield (
                (row.get("id") or "").strip(),
                audio,
                str(path.parent / lyrics) if lyrics else None,
            )


def predict_manifest(args: argparse.Namespace) -> int:
    from lgfn_model.runtime.predictor import TrackInput

    manifest = Path(args.manifest)
    if not manifest.is_file():
        raise UsageError(f"{manifest}: manifest not found")
    predictor = load_predictor(args)
    lyrics_errors: dict[str, str] = {}
    sources: dict[str, str] = {}

    def inputs() -> Iterator[TrackInput]:
        for row_id, audio, lyrics_path in read_manifest(manifest):
            found = find_lyrics(audio, lyrics_path, args.find_lyrics)
            if lyrics_path and found.errors:
                lyrics_errors[row_id] = found.errors[0]  # the row's own lyrics are unusable
            for reason in found.errors if not lyrics_path else ():
                print(f"lgfn: warning: {row_id}: {reason}", file=sys.stderr)
            sources[row_id] = found.source
            yield TrackInput(audio, found.lyrics, key=row_id)

    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115
    failures = total = 0
    try:
        for result in predictor.predict_many(inputs()):
            total += 1
            row_id = result.input.key
            if row_id in lyrics_errors:
                record = {"id": row_id, "error": lyrics_errors.pop(row_id)}
            elif result.prediction is None:
                record = {"id": row_id, "error": result.error}
            elif problem := non_finite(result.prediction):
                record = {"id": row_id, "error": f"{result.input.audio}: {problem}"}
            else:
                source = sources.pop(row_id, "none")
                record = {
                    "id": row_id,
                    "audio": str(result.input.audio),
                    **prediction_record(result.prediction, source),
                }
            failures += "error" in record
            out.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
            out.flush()
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"lgfn: {total} rows, {total - failures} predicted, {failures} failed", file=sys.stderr)
    return 0
