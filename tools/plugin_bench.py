"""How much ``beet emotion`` adds to the predictor's own time, measured in one process.

    python -m tools.plugin_bench FILES... [--workers N] [--rounds N] [--json-out PATH]

Builds a scratch beets library in a temp dir (a real configuration file, the emotion plugin
enabled, lyrics only from ``.lrc`` files beside the audio, no network), imports the files with
``beet import`` (copies: the originals are never touched; an ``.lrc`` beside a file is copied
beside its library copy, as the plugin's ``copy_lrc`` does), loads the model once through the
plugin's own ``ModelHandle`` and warms it up, then times, on the library copies:

(a) the predictor alone: ``Predictor.predict_many`` over the files, with the very lyrics the
    plugin finds for them (read before the clock starts, as ``lgfn bench`` does);
(b) the plugin: ``beet emotion -f -q`` run in-process (prediction, lyrics lookup, database
    stores, tag writes), with the model already loaded.

Overhead is ``(b - a) / a`` in wall time, and the same in CPU time (this process and its
decoding workers), which other jobs on the machine disturb far less when torch runs one
thread (``OMP_NUM_THREADS=1``; idle torch threads spin, and bill CPU time, while they wait for
a busy core). The pair is measured ``--rounds`` times (default 2) in the order ab, ba, ab, ...
so a drift of the machine's load favours neither side. Inside (b) the plugin's own work is
timed directly: the time outside the predictor's result stream (database stores, tag writes,
beets' own start) plus its lyrics lookups, as a share of the predictor time of the same run;
this share does not depend on the two runs seeing the same machine load. Calls to the model
loader (``Predictor.load``) and the lyrics-encoder loader during (b) are counted: a command
that reloads its model shows it here.
Prints a table and one JSON line, like ``lgfn bench``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PLUGIN_COMMAND = ("emotion", "-f", "-q")
"""What (b) runs: ``beet emotion -f`` without the progress line (which only prints)."""


# -- instrumentation ----------------------------------------------------------------------------


@dataclass
class CallTimer:
    """Calls of one function and the wall seconds spent inside them."""

    calls: int = 0
    seconds: float = 0.0
    ends: list[float] = field(default_factory=list)
    """``time.perf_counter()`` when each call returned."""
    durations: list[float] = field(default_factory=list)
    """Seconds inside each call, in call order."""

    def add(self, started: float, ended: float) -> None:
        self.calls += 1
        self.seconds += ended - started
        self.ends.append(ended)
        self.durations.append(ended - started)


@contextmanager
def timed_calls(owner: Any, name: str, timer: CallTimer) -> Iterator[CallTimer]:
    """Count and time calls of ``owner.name`` (a function, method or classmethod) while the
    block runs; the original is put back afterwards. Costs about a microsecond per call."""
    had_own = name in vars(owner)
    raw = vars(owner).get(name) if had_own else getattr(owner, name)

    def measured(func: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                timer.add(started, time.perf_counter())

        return wrapper

    if isinstance(raw, classmethod):
        replacement: Any = classmethod(measured(raw.__func__))
    elif isinstance(raw, staticmethod):
        replacement = staticmethod(measured(raw.__func__))
    else:
        replacement = measured(raw)
    setattr(owner, name, replacement)
    try:
        yield timer
    finally:
        if had_own:
            setattr(owner, name, raw)
        else:
            delattr(owner, name)


@contextmanager
def timed_stream(owner: Any, name: str, timer: CallTimer) -> Iterator[CallTimer]:
    """Time what ``owner.name`` (a method returning an iterator) spends producing items:
    the seconds inside each ``next()``, so the caller's own work between items is not."""
    raw = vars(owner)[name]

    def produced(inner: Iterator[Any]) -> Iterator[Any]:
        try:
            while True:
                started = time.perf_counter()
                try:
                    value = next(inner)
                except StopIteration:
                    return
                finally:
                    timer.add(started, time.perf_counter())
                yield value
        finally:
            close = getattr(inner, "close", None)
            if close is not None:
                close()

    def wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
        return produced(iter(raw(*args, **kwargs)))

    setattr(owner, name, wrapper)
    try:
        yield timer
    finally:
        setattr(owner, name, raw)


# -- the scratch library ------------------------------------------------------------------------


def fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _originals(files: Sequence[Path]) -> dict[Path, str]:
    """sha256 of every given file and the ``.lrc`` beside it, to prove they stay untouched."""
    from beetsplug.emotion.lyrics_sources import find_sidecar

    found: dict[Path, str] = {}
    for path in files:
        found[path] = fingerprint(path)
        sidecar = find_sidecar(path)
        if sidecar is not None:
            found[sidecar] = fingerprint(sidecar)
    return found


def _unload_plugins() -> None:
    """Forget loaded beets plugins and their listeners (as a fresh ``beet`` process would)."""
    import beets.plugins
    from beets.util import cached_classproperty

    beets.plugins.BeetsPlugin.listeners.clear()
    beets.plugins.BeetsPlugin._raw_listeners.clear()
    beets.plugins._instances.clear()
    cached_classproperty.cache.clear()


@contextmanager
def scratch_beets(root: Path, checkpoint: str | Path | None, workers: int | None) -> Iterator[Path]:
    """A beets configuration of its own in ``root`` (``BEETSDIR``), for this process."""
    import beets

    from lgfn_model.runtime.checkpoint_files import resolve_checkpoint

    emotion: dict[str, Any] = {
        "checkpoint": str(resolve_checkpoint(checkpoint).resolve()) if checkpoint else "",
        "workers": "auto" if workers is None else workers,
        # Only .lrc beside the audio: the predictor-alone run gets exactly the same lyrics,
        # and nothing is looked up on the network.
        "lyrics_sources": ["lrc"],
        # The import only builds the library; the timed analysis is the command's.
        "auto": False,
        "copy_lrc": True,
    }
    document = {
        "directory": str(root / "music"),
        "library": str(root / "library.db"),
        "plugins": ["emotion"],
        "create_backup_before_migrations": False,
        "import": {"copy": True, "write": True, "autotag": False, "quiet": True, "log": None},
        "emotion": emotion,
    }
    # JSON is YAML: no quoting questions for paths.
    (root / "config.yaml").write_text(json.dumps(document, indent=2))
    previous = os.environ.get("BEETSDIR")
    os.environ["BEETSDIR"] = str(root)
    _unload_plugins()
    beets.config.clear()
    beets.config.read()
    try:
        yield root
    finally:
        _unload_plugins()
        beets.config.clear()
        beets.config._materialized = False  # the next user reads its own configuration
        if previous is None:
            os.environ.pop("BEETSDIR", None)
        else:
            os.environ["BEETSDIR"] = previous


def beet(*args: str) -> str:
    """``beet ARGS`` in this process (the real command line); returns what it printed."""
    from beets import ui

    out = io.StringIO()
    with redirect_stdout(out):
        ui._raw_main(list(args))
    return out.getvalue()


def import_copies(files: Sequence[Path]) -> dict[str, Path]:
    """``beet import -s -A`` the files (copied into the library, no autotagging, so no
    network), then copy each ``.lrc`` beside its library copy the way the plugin's
    ``copy_lrc`` does on import. Returns library path -> original path."""
    import beets.plugins
    from beets import logging as beets_logging

    from beetsplug.emotion.lyrics_sources import find_sidecar
    from beetsplug.emotion.sidecars import copy_sidecar

    origin_of: dict[str, Path] = {}

    def copied(item: Any, source: bytes, destination: bytes) -> None:
        origin_of[os.fsdecode(destination)] = Path(os.fsdecode(source))

    # The plugin copies sidecars only when it analyses during the import (auto: yes), which
    # would run the model before the clock: watch beets copy the files and copy them here.
    listeners = beets.plugins.BeetsPlugin.listeners["item_copied"]
    listeners.append(copied)
    try:
        beet("import", "-q", "-s", "-A", *(str(path) for path in files))
    finally:
        listeners.remove(copied)
    log = beets_logging.getLogger("beets.emotion")
    with _library() as library:
        for item in library.items():
            origin = origin_of.get(os.fsdecode(item.path))
            sidecar = find_sidecar(origin) if origin is not None else None
            if sidecar is not None:
                copy_sidecar(sidecar, item, log)
    return origin_of


@contextmanager
def _library() -> Iterator[Any]:
    import beets
    from beets.library import Library

    library = Library(
        beets.config["library"].as_filename(), beets.config["directory"].as_filename()
    )
    try:
        yield library
    finally:
        library._close()


def _emotion_plugin() -> Any:
    import beets.plugins

    beets.plugins.load_plugins()
    return next(p for p in beets.plugins.find_plugins() if p.name == "emotion")


# -- the measurement ----------------------------------------------------------------------------


@dataclass
class Round:
    predictor_s: float
    plugin_s: float
    predictor_cpu_s: float
    plugin_cpu_s: float
    predictor_ends: list[float]
    plugin_ends: list[float]
    timers: dict[str, CallTimer]
    summary: list[str]

    @property
    def plugin_own_s(self) -> float:
        """(b)'s time outside the predictor's result stream, plus its lyrics lookups (which
        run inside that stream: the decoder pulls its inputs through them)."""
        inside = self.timers["predictor_stream"].seconds
        return self.plugin_s - inside + self.timers["lyrics_lookup"].seconds

    @property
    def predictor_in_plugin_s(self) -> float:
        return self.plugin_s - self.plugin_own_s


def _deltas(start: float, ends: Sequence[float]) -> list[float]:
    """Per-track seconds: the time between consecutive tracks finishing (the first from the
    start, so they add up to the wall time up to the last track)."""
    out, previous = [], start
    for end in ends:
        out.append(end - previous)
        previous = end
    return out


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the decoding workers: each
    ``predict_many`` shuts its pool down before it returns)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _time_predictor(predictor: Any, inputs: list[Any]) -> tuple[float, float, list[float]]:
    cpu = _cpu_seconds()
    started = time.perf_counter()
    ends = []
    failed = []
    for result in predictor.predict_many(inputs):
        ends.append(time.perf_counter())
        if result.error:
            failed.append(result.error)
    wall = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu
    if failed:
        raise RuntimeError("predictor failed: " + "; ".join(failed))
    return wall, cpu, _deltas(started, ends)


TIMED_IN_PLUGIN = (
    "model_load",
    "text_encoder_load",
    "predictor_stream",
    "per_item_store_and_write",
    "tag_writes",
    "db_stores",
    "db_commits",
    "lyrics_lookup",
)


def _time_plugin() -> tuple[float, float, list[float], dict[str, CallTimer], list[str]]:
    from beets.library import Item

    import lgfn_model.text
    from beetsplug.emotion import tags
    from beetsplug.emotion.analysis import Analyzer
    from beetsplug.emotion.lyrics_sources import LyricsFinder
    from beetsplug.emotion.store_batch import StoreBatch
    from lgfn_model.runtime.predictor import Predictor

    timers = {key: CallTimer() for key in TIMED_IN_PLUGIN}
    with ExitStack() as stack:
        for owner, name, key in (
            (Predictor, "load", "model_load"),
            (lgfn_model.text, "load_text_encoder", "text_encoder_load"),
            # Everything the plugin does with one result: fields, tag write, queueing the store.
            (Analyzer, "_apply", "per_item_store_and_write"),
            (tags, "write_tags", "tag_writes"),
            (Item, "store", "db_stores"),
            # Items are stored in groups, one commit each (store_batch): stores + commit.
            (StoreBatch, "flush", "db_commits"),
            (LyricsFinder, "find", "lyrics_lookup"),
        ):
            stack.enter_context(timed_calls(owner, name, timers[key]))
        stack.enter_context(timed_stream(Predictor, "predict_many", timers["predictor_stream"]))
        cpu = _cpu_seconds()
        started = time.perf_counter()
        output = beet(*PLUGIN_COMMAND)
        wall = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu
    per_item = _deltas(started, timers["per_item_store_and_write"].ends)
    return wall, cpu, per_item, timers, output.splitlines()


def _peak_rss_mib() -> float:
    """This process's peak RSS (it holds the model). Not RUSAGE_CHILDREN: Linux records a
    child's peak at its exec, and a spawned worker is forked from this process first, so the
    children's figure is this process's RSS at the time, not the workers' own."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _device_name(device: Any) -> str:
    if device.type == "cuda":
        import torch

        return torch.cuda.get_device_name(device)
    from lgfn_model.runtime.device import cpu_description

    return cpu_description()


def run_bench(
    files: Sequence[Path],
    checkpoint: str | Path | None = None,
    workers: int | None = None,
    rounds: int = 2,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Measure, return the JSON record (see the module docstring)."""
    from lgfn_model.runtime.predictor import Predictor, TrackInput

    files = [Path(f).resolve() for f in dict.fromkeys(files)]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"not a file: {', '.join(missing)}")
    before = _originals(files)
    root = workdir or Path(tempfile.mkdtemp(prefix="emotion-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        with scratch_beets(root, checkpoint, workers):
            started = time.perf_counter()
            origin_of = import_copies(files)
            import_s = time.perf_counter() - started
            with _library() as library:
                items = list(library.items())
            if len(items) != len(files):
                raise RuntimeError(f"beet import added {len(items)} of {len(files)} files")

            # The one model load of the whole benchmark, through the plugin's own handle (the
            # cache (b) will find it in), plus the lyrics encoder, both outside the clocks.
            analyzer = _emotion_plugin().analyzer(printer=lambda _line: None)
            load = CallTimer()
            started = time.perf_counter()
            with timed_calls(Predictor, "load", load):
                predictor = analyzer.model.predictor()
            lyrics = [analyzer.finder.find(item, force=True).lyrics for item in items]
            if any(lyrics):
                predictor.text_encoder  # noqa: B018 - load it now, so it counts as model load
            load_s = time.perf_counter() - started
            inputs = [
                TrackInput(Path(os.fsdecode(item.path)), text, index)
                for index, (item, text) in enumerate(zip(items, lyrics, strict=True))
            ]
            # Warm-up on one file: first-call costs (kernels, allocator) are not per-track.
            predictor.predict(inputs[0].audio, inputs[0].lyrics)

            measured: list[Round] = []
            for number in range(max(1, rounds)):
                order = "ab" if number % 2 == 0 else "ba"
                got: dict[str, Any] = {}
                for side in order:
                    _forget_lyrics_vectors(predictor)
                    if side == "a":
                        got["a"] = _time_predictor(predictor, inputs)
                    else:
                        got["b"] = _time_plugin()
                (a_s, a_cpu, a_ends), (b_s, b_cpu, b_ends, timers, summary) = got["a"], got["b"]
                measured.append(Round(a_s, b_s, a_cpu, b_cpu, a_ends, b_ends, timers, summary))

            with _library() as library:
                stored = [
                    item
                    for item in library.items()
                    if item.get("emotion_model") == predictor.version and item.get("mood")
                ]
                sidecars = sum(
                    1 for item in library.items() if _has_sidecar(Path(os.fsdecode(item.path)))
                )
            tracks = [
                (
                    origin_of.get(os.fsdecode(item.path), Path(os.fsdecode(item.path))).name,
                    float(item.length or 0.0),
                )
                for item in items
            ]
            record = _record(
                predictor, measured, tracks, load_s, load.calls, import_s, len(stored), sidecars
            )
            record["originals_untouched"] = _originals(files) == before
            record["scratch"] = str(root) if workdir else None
            return record
    finally:
        if workdir is None:
            shutil.rmtree(root, ignore_errors=True)


def _forget_lyrics_vectors(predictor: Any) -> None:
    """Empty the lyrics encoder's line cache, so each timed side encodes the lyrics as a
    fresh ``beet emotion`` would (otherwise the second side finds them all cached)."""
    encoder = getattr(predictor, "_text_encoder", None)
    clear = getattr(encoder, "clear_cache", None)
    if clear is not None:
        clear()


def _has_sidecar(audio: Path) -> bool:
    from beetsplug.emotion.lyrics_sources import find_sidecar

    return find_sidecar(audio) is not None


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _pct(part: float, whole: float) -> float:
    return round(100 * part / whole, 2) if whole else 0.0


def _record(
    predictor: Any,
    rounds: list[Round],
    tracks: list[tuple[str, float]],
    load_s: float,
    setup_loads: int,
    import_s: float,
    stored: int,
    sidecars: int,
) -> dict[str, Any]:
    """The JSON record; times are means over the rounds."""
    count = len(tracks)
    a = _mean([r.predictor_s for r in rounds])
    b = _mean([r.plugin_s for r in rounds])
    a_cpu = _mean([r.predictor_cpu_s for r in rounds])
    b_cpu = _mean([r.plugin_cpu_s for r in rounds])
    own = _mean([r.plugin_own_s for r in rounds])
    inside = _mean([r.predictor_in_plugin_s for r in rounds])
    breakdown = {
        key: round(_mean([r.timers[key].seconds for r in rounds]), 4)
        for key in (
            "per_item_store_and_write",
            "tag_writes",
            "db_stores",
            "db_commits",
            "lyrics_lookup",
        )
    }
    calls = {key: rounds[-1].timers[key].calls for key in breakdown}

    def per_item(values: Callable[[Round], Sequence[float]], index: int) -> float | None:
        found = [values(r)[index] for r in rounds if index < len(values(r))]
        return round(_mean(found), 3) if found else None

    per_track = [
        {
            "file": name,
            "audio_s": round(length, 1),
            "predictor_s": per_item(lambda r: r.predictor_ends, index),
            "plugin_s": per_item(lambda r: r.plugin_ends, index),
            "store_and_write_s": per_item(
                lambda r: r.timers["per_item_store_and_write"].durations, index
            ),
            "lyrics_lookup_s": per_item(lambda r: r.timers["lyrics_lookup"].durations, index),
        }
        for index, (name, length) in enumerate(tracks)
    ]
    peak_rss = _peak_rss_mib()  # before anything below could fork
    return {
        "bench": "beet emotion overhead",
        "device": str(predictor.device),
        "device_name": _device_name(predictor.device),
        "model": predictor.version,
        "tracks": count,
        "audio_minutes": round(sum(length for _, length in tracks) / 60, 2),
        "rounds": len(rounds),
        "workers": predictor.workers,
        "batch_size": predictor.batch_size,
        "torch_threads": _torch_threads(),
        "import_s": round(import_s, 3),
        "load_s": round(load_s, 3),
        "model_loads_setup": setup_loads,
        "predictor_wall_s": round(a, 3),
        "plugin_wall_s": round(b, 3),
        "overhead_pct": _pct(b - a, a),
        "overhead_pct_per_round": [_pct(r.plugin_s - r.predictor_s, r.predictor_s) for r in rounds],
        "predictor_cpu_s": round(a_cpu, 3),
        "plugin_cpu_s": round(b_cpu, 3),
        "cpu_overhead_pct": _pct(b_cpu - a_cpu, a_cpu),
        "plugin_own_s": round(own, 3),
        "plugin_own_pct": _pct(own, inside),
        "predictor_s_per_track": round(a / count, 4),
        "plugin_s_per_track": round(b / count, 4),
        "plugin_breakdown_s": breakdown,
        "plugin_breakdown_calls": calls,
        "model_loads_plugin_run": sum(r.timers["model_load"].calls for r in rounds),
        "text_encoder_loads_plugin_run": sum(r.timers["text_encoder_load"].calls for r in rounds),
        "tracks_stored": stored,
        "lrc_copied": sidecars,
        "plugin_summary": rounds[-1].summary,
        "per_track": per_track,
        "peak_rss_mib": round(peak_rss, 1),
    }


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


# -- output -------------------------------------------------------------------------------------


def render(record: dict[str, Any]) -> str:
    """The human-readable table (the JSON line carries everything)."""
    a, b = record["predictor_wall_s"], record["plugin_wall_s"]
    per_round = ", ".join(f"{value:+.1f}%" for value in record["overhead_pct_per_round"])
    rows = [
        ("device", f"{record['device']} ({record['device_name']})"),
        ("model", record["model"]),
        ("tracks", f"{record['tracks']} ({record['audio_minutes']} min of audio)"),
        (
            "workers / batch / threads",
            f"{record['workers']} / {record['batch_size']} / {record['torch_threads']}",
        ),
        ("import (copy + .lrc)", f"{record['import_s']:.2f} s (not timed below)"),
        ("model load", f"{record['load_s']:.2f} s, once (not timed below)"),
        ("rounds", f"{record['rounds']} (order ab, ba, ...; times are means)"),
        ("(a) predictor alone", f"{a:.2f} s ({record['predictor_s_per_track']:.3f} s/track)"),
        ("(b) beet emotion -f", f"{b:.2f} s ({record['plugin_s_per_track']:.3f} s/track)"),
        ("overhead, wall (b-a)/a", f"{record['overhead_pct']:+.2f}% (rounds: {per_round})"),
        (
            "overhead, CPU time",
            f"{record['cpu_overhead_pct']:+.2f}% "
            f"({record['predictor_cpu_s']:.1f} s vs {record['plugin_cpu_s']:.1f} s)",
        ),
        (
            "plugin's own time in (b)",
            f"{record['plugin_own_s']:.3f} s = {record['plugin_own_pct']:.2f}% of its "
            "predictor time",
        ),
    ]
    calls = record["plugin_breakdown_calls"]
    for key, seconds in record["plugin_breakdown_s"].items():
        rows.append((f"  {key}", f"{seconds:.3f} s in {calls[key]} call(s)"))
    rows += [
        ("model loads in (b)", str(record["model_loads_plugin_run"])),
        ("lyrics-encoder loads in (b)", str(record["text_encoder_loads_plugin_run"])),
        ("stored / .lrc copied", f"{record['tracks_stored']} / {record['lrc_copied']}"),
        ("originals untouched", "yes" if record["originals_untouched"] else "NO"),
        ("peak RSS", f"{record['peak_rss_mib']:.0f} MiB (this process, model included)"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    name_width = max(len(t["file"]) for t in record["per_track"])
    # Windows of neighbouring tracks share model batches, so a track can finish in the same
    # batch as the one before it (about 0 s here) while its neighbour carries the time.
    lines += ["", f"{'track':<{name_width}}  audio s  (a) s  (b) s  store+write ms  lyrics ms"]
    for t in record["per_track"]:
        lines.append(
            f"{t['file']:<{name_width}}  {t['audio_s']:>7.1f}  {_cell(t['predictor_s'], 5)}"
            f"  {_cell(t['plugin_s'], 5)}  {_cell(t['store_and_write_s'], 14, 1000, 1)}"
            f"  {_cell(t['lyrics_lookup_s'], 9, 1000, 1)}"
        )
    return "\n".join(lines)


def _cell(value: float | None, width: int, scale: float = 1.0, digits: int = 2) -> str:
    return f"{'-':>{width}}" if value is None else f"{value * scale:>{width}.{digits}f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.plugin_bench",
        description="Time beet emotion -f against the predictor alone on the same files, "
        "in a scratch beets library (the files are copied; the originals are not touched).",
    )
    parser.add_argument("files", nargs="+", type=Path, help="audio files (.lrc beside them used)")
    parser.add_argument("--checkpoint", help="model folder or shipped model (default, musicnn)")
    parser.add_argument(
        "--workers", type=int, help="decoding processes (default: the plugin's auto)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="measure (a) and (b) N times, in the order ab, ba, ab, ... (default 2)",
    )
    parser.add_argument("--dir", type=Path, help="scratch folder to keep (default: temp, removed)")
    parser.add_argument("--json-out", type=Path, help="also write the JSON line to this file")
    options = parser.parse_args(argv)
    record = run_bench(
        options.files,
        checkpoint=options.checkpoint,
        workers=options.workers,
        rounds=options.rounds,
        workdir=options.dir,
    )
    print(render(record))
    for line in record["plugin_summary"]:
        print(f"  | {line}")
    line = json.dumps(record)
    print(line)
    if options.json_out:
        options.json_out.write_text(line + "\n")
    healthy = (
        record["model_loads_plugin_run"] == 0
        and record["text_encoder_loads_plugin_run"] == 0
        and record["originals_untouched"]
        and record["tracks_stored"] == record["tracks"]
    )
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
