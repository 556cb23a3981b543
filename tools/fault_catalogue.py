"""The fault catalogue: every fault of docs/robustness.md against a scratch beets library.

    python -m tools.fault_catalogue [--tiny] [--long-minutes 120] [--markdown FILE]

It builds a throw-away library (its own config, database and music folder in a temp
directory), breaks files, lyrics, the network, the model and the run itself on purpose, runs
the real ``beet emotion`` in fresh processes, then audits every item: in the database, in its
file's tags, and in its file's bytes. It prints one table row per fault: what should happen,
what was seen, and how many items were lost. An item is lost when it left the database, its
file no longer decodes or reads, or its database values and its file disagree (half-written).
The exit status is 1 when any row failed.

Faults that cannot be made from inside Python are injected at the boundary where they would
arise: the GPU's out-of-memory error in the model's forward, the network in urllib3's
``create_connection`` (a real refused port, a real listening socket that never completes a
handshake, a real server that accepts and never answers) or with ``requests_mock`` for HTTP
answers. File permissions are real: when run as root, the beet processes run without
CAP_DAC_OVERRIDE, so ``chmod`` binds them as it binds a user. Needs the ``test`` extra
(``requests_mock``).
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import os
import pickle
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

MODULE = "tools.fault_catalogue"
CHECKOUT = Path(__file__).resolve().parents[1]
TOKEN = "lgfn-catalogue-SECRET-7f3a9c2e"
"""The Genius token of the network runs: it must never show in any output."""
MOODS = ("happy", "angry", "sad", "relaxed")

# --------------------------------------------------------------------------- fixtures


def synth(
    path: Path,
    seconds: float = 4.0,
    rate: int = 44100,
    channels: int = 2,
    kind: str = "chord",
    title: str | None = None,
) -> Path:
    """A synthesised track (chord, noise or silence) with title/artist tags, by extension."""
    import soundfile

    frames = max(1, int(seconds * rate))
    t = np.arange(frames, dtype=np.float64) / rate
    if kind == "silence":
        mono = np.zeros(frames)
    elif kind == "noise":
        mono = 0.2 * np.random.default_rng(0).standard_normal(frames)
    else:
        freqs = [f for f in (261.63, 329.63, 392.0) if f < rate / 2]
        mono = 0.4 * sum(np.sin(2 * np.pi * f * t) for f in freqs) / len(freqs)
    data = np.stack([mono * (1 - 0.05 * c) for c in range(channels)], axis=1).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".m4a":
        _write_aac(path, data, rate)
    else:
        formats = {".mp3": ("MP3", "MPEG_LAYER_III"), ".flac": ("FLAC", "PCM_24")}
        fmt, subtype = formats.get(suffix, ("WAV", "PCM_16"))
        soundfile.write(path, data, rate, format=fmt, subtype=subtype)
    _tag(path, title or path.stem)
    return path


def _write_aac(path: Path, data: np.ndarray, rate: int) -> None:
    import av

    layout = {1: "mono", 2: "stereo"}[data.shape[1]]
    with av.open(str(path), "w", format="ipod") as out:
        stream = out.add_stream("aac", rate=rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(data.T), format="fltp", layout=layout
        )
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)


def _tag(path: Path, title: str) -> None:
    from mediafile import MediaFile

    try:
        media = MediaFile(str(path))
    except Exception:
        return  # WAV with many channels and the like: beets reads the path, that is enough
    media.update({"title": title, "artist": "Fault Catalogue", "album": "Faults"})
    media.save()


def long_track(path: Path, seconds: float, rate: int = 44100) -> Path:
    """A long stereo FLAC written block by block (never the whole track in memory)."""
    import soundfile

    block = rate * 10
    with soundfile.SoundFile(path, "w", rate, 2, format="FLAC", subtype="PCM_16") as out:
        done = 0
        total = int(seconds * rate)
        while done < total:
            n = min(block, total - done)
            t = np.arange(done, done + n) / rate
            mono = 0.3 * np.sin(2 * np.pi * 220 * t * (1 + 0.1 * np.sin(t / 7)))
            out.write(np.stack([mono, 0.9 * mono], axis=1).astype(np.float32))
            done += n
    _tag(path, "Two hours")
    return path


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def corrupt(path: Path, start: float = 0.3, length: float = 0.3, seed: int = 0) -> None:
    """Overwrite a slice of the file with random bytes (a bad sector, a broken download)."""
    data = bytearray(path.read_bytes())
    a = int(len(data) * start)
    n = max(1, int(len(data) * length))
    data[a : a + n] = np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


def video_only(path: Path) -> Path:
    """An MP4 holding one video stream and no audio."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for _ in range(5):
            image = np.zeros((32, 32, 3), np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode(None))
    return path


_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


def drop_file_permission_override() -> None:
    """``preexec_fn``: the child (and what it runs) obeys file permissions even as root.

    Drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set, so after exec root
    no longer has them: ``chmod 000`` blocks reads, ``chmod 444`` blocks writes, for real.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def permission_preexec() -> Callable[[], None] | None:
    """What makes permissions bind a child: nothing for a normal user, the capability drop
    for root. Raises OSError when root cannot drop them (then permissions cannot be tested)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    probe = subprocess.run(
        [sys.executable, "-c", "pass"], preexec_fn=drop_file_permission_override, check=False
    )
    if probe.returncode != 0:
        raise OSError("cannot drop CAP_DAC_OVERRIDE")
    return drop_file_permission_override


def fingerprint(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


# --------------------------------------------------------------------------- scratch library


@dataclass
class RunResult:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mb: float
    orphans: bool = False
    """Processes of its group were still running after it ended."""

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def lines(self, prefix: str) -> list[str]:
        return [
            line.strip() for line in self.output.splitlines() if line.strip().startswith(prefix)
        ]


def _group_alive(group: int, grace: float) -> bool:
    deadline = time.monotonic() + grace
    while True:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        if time.monotonic() > deadline:
            return True
        time.sleep(0.1)


@dataclass
class Track:
    path: Path
    before: str | None = None
    """sha256 of the file when the item was added (None: no file)."""


class Scratch:
    """A beets configuration, database and music folder of its own, in ``root``."""

    def __init__(self, root: Path, checkpoint: Path | None, **emotion: Any) -> None:
        self.root = root
        self.music = root / "music"
        self.music.mkdir(parents=True, exist_ok=True)
        self.checkpoint = checkpoint
        self.emotion: dict[str, Any] = {"lyrics_sources": ["beets", "lrc", "embedded"], **emotion}
        if checkpoint is not None:
            self.emotion.setdefault("checkpoint", str(checkpoint))
        self.tracks: dict[str, Track] = {}
        self.write_config()

    def write_config(self, **emotion: Any) -> None:
        options = {**self.emotion, **emotion}
        document = {
            "directory": str(self.music),
            "library": str(self.root / "library.db"),
            "plugins": ["emotion"],
            "create_backup_before_migrations": False,
            "import": {"write": True, "copy": False},
            "emotion": options,
        }
        # JSON is YAML: no quoting questions for paths or tokens.
        (self.root / "config.yaml").write_text(json.dumps(document, indent=2))

    def env(self) -> dict[str, str]:
        # The child runs ``python -m tools.fault_catalogue`` from the scratch folder: the
        # checkout's root goes on its path so ``tools`` imports there too.
        path = os.pathsep.join(p for p in (str(CHECKOUT), os.environ.get("PYTHONPATH")) if p)
        return {
            **os.environ,
            "BEETSDIR": str(self.root),
            "HOME": str(self.root),
            "PYTHONPATH": path,
        }

    def add(self, name: str, path: Path, readable: bool = True) -> None:
        """Put ``path`` in the library as it is (call before breaking the file)."""
        from beets.library import Item

        library = self.library()
        try:
            item = Item.from_path(str(path)) if readable else Item(path=str(path), title=name)
            if not item.title:
                item.title = name
            library.add(item)
        finally:
            library._close()
        self.tracks[name] = Track(path)

    def library(self) -> Any:
        """The scratch database, opened in this process (no migration backups)."""
        import beets
        from beets.library import Library

        beets.config["create_backup_before_migrations"] = False
        return Library(str(self.root / "library.db"), str(self.music))

    def snapshot(self) -> None:
        for track in self.tracks.values():
            track.before = fingerprint(track.path)

    def beet(
        self,
        *args: str,
        mode: str = "plain",
        preexec: Callable[[], None] | None = None,
        timeout: float = 600,
        on_start: Callable[[subprocess.Popen[str]], None] | None = None,
    ) -> RunResult:
        """``beet ARGS`` in a fresh process (with fault ``mode`` injected), timed, its peak
        RSS measured (the largest of it and its decoding workers)."""
        command = [sys.executable, "-m", MODULE, "--child", mode, "--", *args]
        started = time.monotonic()
        process = subprocess.Popen(
            command,
            env=self.env(),
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=preexec,
            start_new_session=True,  # its own process group, as a job started from a shell
        )
        collected: dict[str, str] = {}
        readers = [
            threading.Thread(target=lambda n=n, s=s: collected.__setitem__(n, s.read()))
            for n, s in (("out", process.stdout), ("err", process.stderr))
        ]
        for reader in readers:
            reader.start()
        if on_start is not None:
            on_start(process)
        deadline = started + timeout
        status, usage = 0, None
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                process.kill()
                _, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.05)
        process.returncode = os.waitstatus_to_exitcode(status)
        # Whatever of its group still runs 3 s later (a decoding worker orphaned by kill -9)
        # is reported, then stopped: it would hold the output pipes open for ever.
        orphans = _group_alive(process.pid, 3.0)
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        for reader in readers:
            reader.join()
        return RunResult(
            process.returncode,
            collected.get("out", ""),
            collected.get("err", ""),
            time.monotonic() - started,
            usage.ru_maxrss / 1024 if usage is not None else 0.0,
            orphans,
        )

    def state(self, name: str, version: str | None) -> str:
        """One item's audit: ``tagged`` (database and file agree on fresh values),
        ``untouched`` (no values, file bytes as they were), or what went wrong."""
        from beetsplug.emotion import fields, tags

        track = self.tracks[name]
        library = self.library()
        try:
            found = [item for item in library.items() if os.fsdecode(item.path) == str(track.path)]
            if not found:
                return "missing from the database"
            item = found[0]
            model = fields.own_value(item, fields.MODEL)
            mood = fields.own_value(item, fields.MOOD)
        finally:
            library._close()
        now = fingerprint(track.path)
        if not model:
            if now != track.before:
                return "file changed, database not (half-written)"
            return "untouched"
        if version is not None and model != version:
            return f"stored by another model ({model})"
        try:
            in_file = tags.read_tags(track.path)
            from lgfn_model.data.audio import decode_audio

            decode_audio(track.path, 16000, max_seconds=5.0)
        except Exception as error:
            return f"file unreadable after the run ({type(error).__name__})"
        if in_file.get(fields.MODEL) != model or in_file.get(fields.MOOD) != mood:
            return "database and file disagree (half-written)"
        return "tagged"


LOST_STATES = ("missing", "half-written", "unreadable", "disagree")


def is_lost(state: str) -> bool:
    return any(word in state for word in LOST_STATES)


# --------------------------------------------------------------------------- the table


@dataclass
class Row:
    group: str
    fault: str
    expected: str
    observed: str
    lost: int
    ok: bool


@dataclass
class Context:
    workdir: Path
    checkpoint: Path | None
    version: str
    long_minutes: float
    rows: list[Row] = field(default_factory=list)
    log: Callable[[str], None] = print

    def scratch(self, name: str, **emotion: Any) -> Scratch:
        return Scratch(self.workdir / name, self.checkpoint, **emotion)

    def add(self, *rows: Row) -> None:
        for row in rows:
            self.rows.append(row)
            mark = "ok" if row.ok else "FAILED"
            self.log(f"  [{mark}] {row.group}: {row.fault}: {row.observed}")


def _tagged(result: RunResult) -> int:
    """How many items the run's summary says it tagged."""
    found = re.search(r"emotion: tagged (\d+)", result.output)
    return int(found.group(1)) if found else 0


def _line_for(result: RunResult, path: Path, prefix: str = "failed:") -> str | None:
    return next((line for line in result.lines(prefix) if str(path) in line), None)


def _reason(line: str | None, path: Path) -> str:
    if line is None:
        return "no line"
    return line.split(f"{path}: ", 1)[-1]


# --------------------------------------------------------------------------- bad audio, lyrics


@dataclass
class FileFault:
    name: str
    fault: str
    expected: str
    make: Callable[[Path], Path]
    """Writes the good file, returns its path (the item is added from it)."""
    breaks: Callable[[Path], None] | None = None
    """Breaks it after it was added to the library."""
    outcome: str = "failed"
    """``failed`` (one line, item untouched), ``tagged``, or ``warned`` (tagged + warning)."""
    reason: str = ""
    """A word the failure or warning line must hold."""
    readable: bool = True


def file_faults(folder: Path) -> list[FileFault]:
    def good(name: str, **kw: Any) -> Callable[[Path], Path]:
        return lambda d: synth(d / name, **kw)

    return [
        FileFault("cut.mp3", "truncated MP3 (second half cut off)",
                  "tagged from the part that decodes, one warning line",
                  good("cut.mp3", seconds=20), lambda p: truncate(p, 0.5), "warned", "decoded"),
        FileFault("cut.flac", "truncated FLAC (second half cut off)",
                  "tagged from the part that decodes, one warning line",
                  good("cut.flac", seconds=20), lambda p: truncate(p, 0.5), "warned", "decoded"),
        FileFault("cut.m4a", "truncated M4A (index lost)", "one failure line, item untouched",
                  good("cut.m4a", seconds=20), lambda p: truncate(p, 0.5), "failed", "truncated"),
        FileFault("junk.mp3", "corrupt MP3 (30 % random bytes mid-file)",
                  "tagged (bad frames skipped) or one failure line; nothing lost",
                  good("junk.mp3", seconds=20), corrupt, "any"),
        FileFault("junk.flac", "corrupt FLAC (30 % random bytes mid-file)",
                  "tagged (bad frames skipped) or one failure line; nothing lost",
                  good("junk.flac", seconds=20), corrupt, "any"),
        FileFault("junk.m4a", "corrupt M4A (30 % random bytes mid-file)",
                  "tagged (bad packets skipped) or one failure line; nothing lost",
                  good("junk.m4a", seconds=20), corrupt, "any"),
        FileFault("head.flac", "corrupt FLAC header (first 64 kB random)",
                  "one failure line or tagged; nothing lost", good("head.flac", seconds=20),
                  lambda p: corrupt(p, 0.0, 65536 / p.stat().st_size), "any"),
        FileFault("empty.mp3", "zero-byte file", "one failure line, item untouched",
                  good("empty.mp3"), lambda p: p.write_bytes(b""), "failed", "empty"),
        FileFault("notes.mp3", "text file renamed .mp3", "one failure line, item untouched",
                  lambda d: _text(d / "notes.mp3"), None, "failed", "not an audio file",
                  readable=False),
        FileFault("video.mp4", "no audio stream (video-only MP4)",
                  "one failure line, item untouched", lambda d: video_only(d / "video.mp4"),
                  None, "failed", "no audio stream", readable=False),
        FileFault("gone.flac", "missing file (deleted after import)",
                  "one failure line, item untouched", good("gone.flac"),
                  lambda p: p.unlink(), "failed", "not found"),
        FileFault("locked.flac", "unreadable file (chmod 000)", "one failure line, item untouched",
                  good("locked.flac"), lambda p: p.chmod(0), "failed", "permission denied"),
        FileFault("readonly.flac", "read-only file when writing tags (chmod 444)",
                  "one failure line, item untouched (database too)", good("readonly.flac"),
                  lambda p: p.chmod(0o444), "failed", "cannot write tags"),
        FileFault("short.flac", "very short track (0.3 s)", "tagged", good("short.flac",
                  seconds=0.3), None, "tagged"),
        FileFault("silent.flac", "silent track (30 s of zeros)", "tagged",
                  good("silent.flac", seconds=30, kind="silence"), None, "tagged"),
        FileFault("8k.wav", "8 kHz mono", "tagged",
                  good("8k.wav", rate=8000, channels=1), None, "tagged"),
        FileFault("192k.flac", "192 kHz stereo, 24-bit", "tagged",
                  good("192k.flac", rate=192000), None, "tagged"),
        FileFault("six.flac", "6 channels (5.1)", "tagged", good("six.flac", channels=6),
                  None, "tagged"),
        FileFault("eight.wav", "8 channels", "tagged", good("eight.wav", channels=8),
                  None, "tagged"),
    ]  # fmt: skip


def _text(path: Path) -> Path:
    path.write_text("these are not the sounds you are looking for\n" * 50)
    return path


def _lrc_timestamps(i: int) -> str:
    return f"[{i // 6000:02d}:{(i // 100) % 60:02d}.{i % 100:02d}]"


LYRICS_FAULTS: list[tuple[str, Callable[[], bytes]]] = [
    ("malformed timestamps", "[0a:1b]x\n[99:99.999]hello\n[:]\n[00:01.5.3]world\n[--]\n".encode,
     ),
    ("negative and out-of-order times",
     "[00:09.00]nine\n[-00:01.00]minus\n[00:03.00]three\n[offset:+500000]\n".encode),
    ("100,000 lines", lambda: "\n".join(
        f"{_lrc_timestamps(i % 360000)}line {i}" for i in range(100_000)).encode()),
    ("binary junk", lambda: np.random.default_rng(1).integers(
        0, 256, 200_000, dtype=np.uint8).tobytes()),
    ("Latin-1 encoding", lambda: "[00:01.00]café, señor, Ærø\n[00:02.00]à bientôt\n".encode(
        "latin-1")),
    ("UTF-16 with BOM", lambda: "[00:01.00]niño pequeño\n[00:02.00]日本語の歌\n".encode("utf-16")),
    ("one 2 MB line (beyond the encoder's limit)",
     lambda: ("[00:01.00]" + "la " * 700_000 + "\n[00:02.00]end\n").encode()),
]  # fmt: skip


def bad_files(ctx: Context) -> None:
    """One run over a library of broken files, odd formats and broken lyrics, plus controls."""
    try:
        preexec = permission_preexec()
        enforced = True
    except OSError:
        preexec, enforced = None, False
    scratch = ctx.scratch("files")
    folder = scratch.music
    faults = file_faults(folder)
    for fault in faults:
        scratch.add(fault.name, fault.make(folder), readable=fault.readable)
    for n in range(3):
        name = f"control{n}.flac"
        scratch.add(name, synth(folder / name, seconds=6, kind=("chord", "noise", "chord")[n]))
    for n, (_, content) in enumerate(LYRICS_FAULTS):
        name = f"lyrics{n}.flac"
        path = synth(folder / name, seconds=6)
        path.with_suffix(".lrc").write_bytes(content())
        scratch.add(name, path)
    for fault in faults:
        if fault.breaks is not None:
            fault.breaks(folder / fault.name)
    scratch.snapshot()

    result = scratch.beet("emotion", "-w", preexec=preexec)
    head = next((line for line in result.output.splitlines() if "emotion: tagged" in line), "")
    ctx.log(f"  run: {head.strip()} ({result.seconds:.1f} s, exit {result.returncode})")
    if not head:
        ctx.log(textwrap.indent(result.output[-3000:], "  | "))
    for fault in faults:
        path = folder / fault.name
        state = scratch.state(fault.name, ctx.version)
        lost = int(is_lost(state))
        failure = _line_for(result, path)
        warning = _line_for(result, path, "warning:")
        if fault.name in ("locked.flac", "readonly.flac") and not enforced:
            why = "not tested: root here cannot drop CAP_DAC_OVERRIDE"
            ctx.add(Row("bad audio", fault.fault, fault.expected, why, lost, True))
            continue
        if failure is not None:
            observed = f'failed: "{_reason(failure, path)}"; {state}'
        elif warning is not None:
            observed = f'{state}; warning: "{_reason(warning, path)}"'
        else:
            observed = state
        if fault.outcome == "failed":
            ok = failure is not None and fault.reason in failure and state == "untouched"
        elif fault.outcome == "warned":
            ok = state == "tagged" and warning is not None and fault.reason in warning
        elif fault.outcome == "tagged":
            ok = state == "tagged" and failure is None
        else:
            ok = (state == "tagged") != (failure is not None)
        ok = ok and not lost and "Traceback" not in result.output
        ctx.add(Row("bad audio", fault.fault, fault.expected, observed, lost, ok))

    for n, (fault_name, _) in enumerate(LYRICS_FAULTS):
        name = f"lyrics{n}.flac"
        state = scratch.state(name, ctx.version)
        source = _field(scratch, name, "emotion_lyrics")
        gate = _field(scratch, name, "emotion_gate_lyrics")
        ok = state == "tagged" and _line_for(result, folder / name) is None
        observed = f"{state}; lyrics from {source}" + (
            f", lyrics gate {float(gate):.2f}" if gate not in (None, "") else ""
        )
        ctx.add(Row("bad lyrics", fault_name, "tagged; bad lines ignored; run goes on",
                    observed, int(is_lost(state)), ok))  # fmt: skip
    controls = [scratch.state(f"control{n}.flac", ctx.version) for n in range(3)]
    ctx.add(
        Row(
            "bad audio",
            "good files beside all of the above",
            "tagged; run finishes with a summary counting every failure",
            f"{controls.count('tagged')}/3 tagged; summary: {head.strip()!r}",
            sum(is_lost(s) for s in controls),
            # Exit 1: some files failed, and scripts must be able to tell.
            controls.count("tagged") == 3 and result.returncode == 1,
        )
    )


def _field(scratch: Scratch, name: str, key: str) -> Any:
    library = scratch.library()
    try:
        for item in library.items():
            if os.fsdecode(item.path) == str(scratch.tracks[name].path):
                return item.get(key, with_album=False)
    finally:
        library._close()
    return None


def long_file(ctx: Context) -> None:
    """Peak memory on a long file against a 3-minute one, same settings."""
    seconds = ctx.long_minutes * 60
    peaks: dict[str, RunResult] = {}
    states: dict[str, str] = {}
    for label, length in (("3-minute", 180.0), ("long", seconds)):
        scratch = ctx.scratch(f"long-{label}")
        started = time.monotonic()
        path = long_track(scratch.music / f"{label}.flac", length)
        ctx.log(
            f"  wrote {path.name} ({length / 60:.0f} min) in {time.monotonic() - started:.0f} s"
        )
        scratch.add(label, path)
        scratch.snapshot()
        peaks[label] = scratch.beet("emotion", "-w")
        states[label] = scratch.state(label, ctx.version)
        shutil.rmtree(scratch.root, ignore_errors=True)  # the long file is ~0.5 GB
    long, short = peaks["long"], peaks["3-minute"]
    per_hour = (long.peak_rss_mb - short.peak_rss_mb) / max(1e-9, (seconds - 180) / 3600)
    ctx.add(
        Row(
            "bad audio",
            f"{ctx.long_minutes / 60:g}-hour file (FLAC, 44.1 kHz stereo)",
            "tagged; peak memory bounded (grows with the decoded audio only)",
            f"{states['long']} in {long.seconds:.0f} s; peak RSS {long.peak_rss_mb:.0f} MB "
            f"(3-minute file: {short.peak_rss_mb:.0f} MB; +{per_hour:.0f} MB per hour of audio)",
            int(is_lost(states["long"])),
            states["long"] == "tagged" and long.returncode == 0,
        )
    )


# --------------------------------------------------------------------------- network


NETWORK_MODES: list[tuple[str, str]] = [
    ("net-refused", "network down: every connection refused"),
    ("net-blackhole", "network blackholed: connections never complete"),
    ("net-silent", "server accepts and never answers"),
    ("net-reset", "connection reset by the server"),
    ("net-429", "HTTP 429 (rate limited) everywhere"),
    ("net-503", "HTTP 500/503 everywhere"),
    ("net-401", "HTTP 401/403 everywhere (bad token)"),
    ("net-garbage", "HTTP 200 with a garbage body"),
]


def network(ctx: Context) -> None:
    tracks = 8
    online = ["beets", "lrc", "embedded", "syncedlyrics", "genius"]
    scratch = ctx.scratch(
        "network",
        lyrics_sources=online,
        syncedlyrics_providers=["lrclib", "musixmatch", "netease"],
        genius_token=TOKEN,
        lyrics_timeout=10.0,
    )
    for n in range(tracks):
        name = f"song{n}.flac"
        scratch.add(name, synth(scratch.music / name, seconds=5, title=f"Song {n}"))
    scratch.snapshot()
    scratch.write_config(lyrics_sources=["beets", "lrc", "embedded"])
    baseline = scratch.beet("emotion", "-w")
    ctx.log(f"  baseline (network sources off): {baseline.seconds:.1f} s")
    scratch.write_config()
    for mode, fault in NETWORK_MODES:
        result = scratch.beet("-vv", "emotion", "-w", "-f", mode=mode)
        tagged = _tagged(result)
        lost = sum(is_lost(scratch.state(f"song{n}.flac", ctx.version)) for n in range(tracks))
        sources = {_field(scratch, f"song{n}.flac", "emotion_lyrics") for n in range(tracks)}
        errors = len(result.lines("lyrics lookup:"))
        leaked = TOKEN in result.output
        extra = result.seconds - baseline.seconds
        switched = "network unreachable" in result.output or "not asking" in result.output
        observed = (
            f"{tagged}/{tracks} tagged, lyrics {'/'.join(sorted(map(str, sources)))}; "
            f"{result.seconds:.1f} s (+{extra:.1f} s vs network off); "
            f"{errors} lookup lines{'; sources switched off' if switched else ''}; "
            f"token in output: {'YES' if leaked else 'no'}"
        )
        bound = 8.0 if mode in ("net-refused", "net-blackhole") else 30.0
        ok = (
            tagged == tracks
            and not lost
            and not leaked
            and extra < bound
            and result.returncode == 0
            and sources == {"none"}
        )
        expected = "no lyrics from the network, run goes on" + (
            ", a few seconds more than network off"
            if mode in ("net-refused", "net-blackhole")
            else ", bounded time per item"
        )
        ctx.add(Row("network", fault, expected, observed, lost, ok))


@contextmanager
def _fault_server(kind: str) -> Iterator[tuple[str, int]]:
    """A local TCP endpoint that fails the way ``kind`` says."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    address = server.getsockname()
    held: list[socket.socket] = []
    stop = threading.Event()
    if kind == "refused":
        server.close()  # nothing listens on that port any more
        yield address
        return
    if kind == "blackhole":
        # Never accepted, backlog full: the kernel drops further SYNs, connect() hangs.
        server.listen(0)
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(address)
            held.append(filler)
    else:
        server.listen(64)
        server.settimeout(0.2)

        def serve() -> None:
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except OSError:
                    continue
                if kind == "reset":
                    conn.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                    )
                    conn.close()  # RST
                else:
                    held.append(conn)  # silent: keep it open, say nothing

        threading.Thread(target=serve, daemon=True).start()
    try:
        yield address
    finally:
        stop.set()
        for sock in held:
            sock.close()
        server.close()


_KEEP: list[Any] = []


def _install_network_fault(mode: str) -> None:
    kind = mode.removeprefix("net-")
    if kind in ("refused", "blackhole", "silent", "reset"):
        import urllib3.util.connection as connection

        context = _fault_server(kind)
        address = context.__enter__()
        _KEEP.append(context)  # a collected generator would close the server
        real = connection.create_connection

        def create_connection(_address: Any, *args: Any, **kwargs: Any) -> Any:
            return real(address, *args, **kwargs)

        connection.create_connection = create_connection
        return
    import requests_mock

    mocker = requests_mock.Mocker()
    mocker.start()
    answers = {
        "429": {"status_code": 429},
        "503": {"response_list": [{"status_code": 500}, {"status_code": 503}] * 1000},
        "401": {"response_list": [{"status_code": 401}, {"status_code": 403}] * 1000},
        "garbage": {"content": bytes(range(256)) * 40, "status_code": 200},
    }
    mocker.register_uri(requests_mock.ANY, requests_mock.ANY, **answers[kind])


# --------------------------------------------------------------------------- interruption


def interruption(ctx: Context) -> None:
    for sig, label in ((signal.SIGINT, "Ctrl-C (SIGINT) mid-run"),
                       (signal.SIGKILL, "crash (SIGKILL) mid-run")):  # fmt: skip
        ctx.add(_interrupted_run(ctx, sig, label))


def _interrupted_run(ctx: Context, sig: signal.Signals, label: str) -> Row:
    """Stop a run once ``beet ls`` (run alongside it) shows 3 items done; audit; run again."""
    scratch = ctx.scratch(f"interrupt-{sig.name}")
    names = [f"t{n:02d}.flac" for n in range(12)]
    for name in names:
        scratch.add(name, synth(scratch.music / name, seconds=4, title=name))
    scratch.snapshot()
    listings: list[tuple[float, int, int]] = []  # (seconds, exit status, items listed)
    query = ["-m", "beets", "ls", "-f", "$title", f"emotion_model:{ctx.version}"]

    def interrupt(process: subprocess.Popen[str]) -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            started = time.monotonic()
            listed = subprocess.run(
                [sys.executable, *query],
                env=scratch.env(),
                capture_output=True,
                text=True,
                timeout=120,
            )
            count = len(listed.stdout.split())
            listings.append((time.monotonic() - started, listed.returncode, count))
            if count >= 3 or count == len(names):
                if sig == signal.SIGINT:
                    os.killpg(process.pid, sig)  # Ctrl-C reaches the whole foreground group
                else:
                    process.send_signal(sig)  # the beet process itself dies
                return

    stopped = scratch.beet("emotion", "-w", mode="slow-write", on_start=interrupt)
    states = {name: scratch.state(name, ctx.version) for name in names}
    done = sum(s == "tagged" for s in states.values())
    half = [n for n, s in states.items() if is_lost(s)]
    rerun = scratch.beet("emotion", "-w")
    after = {name: scratch.state(name, ctx.version) for name in names}
    lost = sum(is_lost(s) or s != "tagged" for s in after.values())
    ls_ok = bool(listings) and all(code == 0 for _, code, _ in listings)
    slowest = max((s for s, _, _ in listings), default=0.0)
    resumed = next((line for line in rerun.output.splitlines() if "tagged" in line), "")
    summary = next((ln for ln in stopped.output.splitlines() if "emotion: tagged" in ln), "")
    observed = (
        f"stopped: {summary.strip().removeprefix('emotion: ') or 'no summary'}; audit: "
        f"{done} tagged, {len(states) - done - len(half)} untouched, "
        f"{len(half)} half-written; rerun: {resumed.strip().removeprefix('emotion: ')}; "
        f"concurrent beet ls: {len(listings)} ok, slowest {slowest:.1f} s"
        + ("; a decoding worker was left running" if stopped.orphans else "")
    )
    if sig == signal.SIGINT:
        ok = not half and 0 < done < len(names)
        expected = "every item fully updated or untouched; next run does the rest"
        lost += len(half)
    else:
        ok = 0 < done < len(names)
        expected = "no corrupt file; an item written but not stored is redone by the next run"
    # A worker (or the resource tracker) outliving the run is a failure, not a remark.
    ok = ok and not stopped.orphans
    return Row("interruption", label, expected, observed, lost, ok and lost == 0 and ls_ok)


# --------------------------------------------------------------------------- GPU, checkpoints


def gpu(ctx: Context) -> None:
    scratch = ctx.scratch("gpu", batch_size=16)
    names = [f"g{n}.flac" for n in range(3)]
    for name in names:
        scratch.add(name, synth(scratch.music / name, seconds=30, title=name))
    scratch.snapshot()
    for mode, fault, expected in (
        ("oom-batch", "GPU out of memory on batches of more than 2 windows",
         "retried in smaller batches, one warning; all tagged"),
        ("oom-always", "GPU out of memory even on one window",
         "each track falls back to the CPU with one warning; all tagged"),
    ):  # fmt: skip
        result = scratch.beet("emotion", "-w", "-f", mode=mode)
        states = [scratch.state(n, ctx.version) for n in names]
        warnings = result.lines("warning:")
        tagged = _tagged(result)
        observed = f"{tagged}/{len(names)} tagged; {len(warnings)} warning line(s)" + (
            f': "{warnings[-1].removeprefix("warning: ")}"' if warnings else ""
        )
        want = 1 if mode == "oom-batch" else 1 + len(names)
        ok = tagged == len(names) and len(warnings) == want and result.returncode == 0
        ctx.add(Row("GPU", fault, expected, observed, sum(map(is_lost, states)), ok))

    import torch

    if torch.cuda.is_available():
        ctx.add(Row("GPU", "device: cuda without a GPU", "one clear error",
                    "not tested: this machine has a GPU", 0, True))  # fmt: skip
        return
    scratch.write_config(device="cuda")
    result = scratch.beet("emotion", "-f")
    errors = [line for line in result.stderr.splitlines() if "emotion" in line]
    states = [scratch.state(n, ctx.version) for n in names]
    observed = f'exit {result.returncode}: "{errors[-1] if errors else result.stderr.strip()}"'
    ok = result.returncode != 0 and len(errors) == 1 and "Traceback" not in result.output
    ctx.add(Row("GPU", "device: cuda without a GPU", "one clear error, nothing changed",
                observed, sum(map(is_lost, states)), ok))  # fmt: skip


class _Payload:
    """Unpickling this creates a file: proof that code from a checkpoint ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def checkpoints(ctx: Context) -> None:
    from lgfn_model.testing import write_tiny_checkpoint

    scratch = ctx.scratch("checkpoints")
    scratch.add("c.flac", synth(scratch.music / "c.flac", seconds=5))
    scratch.snapshot()
    base = write_tiny_checkpoint(scratch.root / "good", version="lgfn-catalogue")
    marker = scratch.root / "CODE-FROM-CHECKPOINT-RAN"

    def pickle_payload(d: Path) -> None:
        (d / "model.safetensors").write_bytes(pickle.dumps(_Payload(marker)))

    def torch_payload(d: Path) -> None:
        import torch

        torch.save({"weights": _Payload(marker)}, d / "model.safetensors")

    def flipped(d: Path) -> None:
        data = bytearray((d / "model.safetensors").read_bytes())
        data[2:40] = b"\xff" * 38
        (d / "model.safetensors").write_bytes(bytes(data))

    def shapes(d: Path) -> None:
        other = write_tiny_checkpoint(scratch.root / "wide", d_model=48)
        shutil.copy(other / "model.safetensors", d / "model.safetensors")

    def version(d: Path) -> None:
        document = json.loads((d / "config.json").read_text())
        document["format_version"] = 99
        (d / "config.json").write_text(json.dumps(document))

    def foreign(d: Path) -> None:
        (d / "config.json").write_text(
            json.dumps({"architectures": ["BertModel"], "hidden_size": 384})
        )

    def config(key: str, value: Any) -> Callable[[Path], None]:
        """A config.json asking for ``value`` in ``key`` (``audio.x``: the audio part)."""

        def tamper(d: Path) -> None:
            document = json.loads((d / "config.json").read_text())
            target = document["config"]
            *parents, last = key.split(".")
            for parent in parents:
                target = target[parent]
            target[last] = value
            (d / "config.json").write_text(json.dumps(document))

        return tamper

    cases = [
        ("pickle payload as model.safetensors", pickle_payload),
        ("torch.save payload as model.safetensors", torch_payload),
        ("tampered bytes in the weights", flipped),
        ("weights of another shape", shapes),
        ("unknown checkpoint format version", version),
        ("foreign checkpoint (a Hugging Face config)", foreign),
        # Impossible configs: before the bounds checks, d_model 30000 allocated 7.7 GB while
        # loading and window_seconds 1e6 asked for 60 GiB per window; the rest were tracebacks.
        ("config: d_model 30000", config("d_model", 30000)),
        ("config: window_seconds 1e6", config("audio.window_seconds", 1e6)),
        ("config: hop_length 0", config("audio.hop_length", 0)),
        ("config: sample_rate 0", config("audio.sample_rate", 0)),
        ("config: negative channels", config("resnet_channels", [8, -16])),
        ("config: unknown pretrained_audio", config("pretrained_audio", "vggish")),
        ("config: control characters in version", config("version", "lgfn\x1b[2J\x1b[31m")),
        ("config: a path in text_encoder", config("text_encoder", "../../../etc/passwd")),
    ]
    # A failing load imports torch and little else (~0.7 GB); a config that allocated what
    # it asked for would show here in GB.
    rss_limit_mb = 1500

    def watch_peak(process: subprocess.Popen[str], peak: list[float]) -> threading.Thread:
        """The child's own peak RSS (VmHWM after its exec), read until it exits.

        RunResult.peak_rss_mb (ru_maxrss) also counts this process's RSS at the fork: under
        pytest, after other tests, every row would read 1.8 GB whatever the child did. Never
        waits for the child (``scratch.beet`` reaps it)."""

        def poll() -> None:
            status = Path(f"/proc/{process.pid}/status")
            while True:
                try:
                    lines = status.read_text().splitlines()
                except OSError:
                    return  # reaped
                line = next((ln for ln in lines if ln.startswith("VmHWM:")), None)
                if line is None:
                    return  # exited: a zombie has no memory left
                peak[:] = [int(line.split()[1]) / 1024]
                time.sleep(0.02)

        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        return thread

    for n, (fault, tamper) in enumerate(cases):
        directory = scratch.root / f"bad{n}"
        shutil.copytree(base, directory)
        tamper(directory)
        scratch.write_config(checkpoint=str(directory))
        peak: list[float] = []
        watchers: list[threading.Thread] = []
        result = scratch.beet(
            "emotion", on_start=lambda p, a=peak, w=watchers: w.append(watch_peak(p, a))
        )
        for watcher in watchers:
            watcher.join(5)
        peak_mb = peak[0] if peak else result.peak_rss_mb  # no /proc: ru_maxrss
        state = scratch.state("c.flac", None)
        errors = [line for line in result.stderr.splitlines() if line.strip()]
        ran = marker.exists()
        observed = (
            f'exit {result.returncode}: "{errors[-1] if errors else ""}"'
            + ("; CODE RAN" if ran else "; no code ran")
            + f"; peak RSS {peak_mb:.0f} MB"
        )
        ok = (
            result.returncode != 0
            and len(errors) == 1
            and "Traceback" not in result.output
            and not ran
            and state == "untouched"
            and peak_mb < rss_limit_mb
        )
        ctx.add(Row("checkpoint", fault,
                    "one clear error; no code from it runs; no memory eaten; nothing changed",
                    observed, int(is_lost(state)), ok))  # fmt: skip


# --------------------------------------------------------------------------- two runs at once


def locking(ctx: Context) -> None:
    """Two storing runs on one library: the second is refused (or waits with --wait)."""
    from beetsplug.emotion.library_lock import SUFFIX

    scratch = ctx.scratch("locking")
    names = [f"l{n}.flac" for n in range(6)]
    for name in names:
        scratch.add(name, synth(scratch.music / name, seconds=4, title=name))
    scratch.snapshot()
    lock = Path(str(scratch.root / "library.db") + SUFFIX)
    for wait in (False, True):
        args = ("emotion", "-w", "--wait") if wait else ("emotion", "-w", "-f")
        seconds: list[RunResult] = []
        threads: list[threading.Thread] = []
        first = scratch.beet(
            "emotion",
            "-w",
            "-f",
            mode="slow-write",
            on_start=lambda process, a=args, r=seconds, t=threads: t.append(
                _start_when_locked(scratch, lock, process, a, r)
            ),
        )
        for thread in threads:
            thread.join()
        other = seconds[0]
        states = [scratch.state(name, ctx.version) for name in names]
        lost = sum(is_lost(s) or s != "tagged" for s in states)
        errors = [line for line in other.stderr.splitlines() if line.strip()]
        one = _tagged(first)
        if not wait:
            observed = (
                f"first: tagged {one}; second: exit {other.returncode}, "
                f'"{errors[-1] if errors else other.stderr.strip()}", tagged {_tagged(other)}'
            )
            ok = (
                one == len(names)
                and other.returncode != 0
                and len(errors) == 1
                and "already analysing" in errors[0]
                and "Traceback" not in other.output
            )
            ctx.add(Row("concurrency", "two beet emotion -w at once on one library",
                        "the second says another run is analysing the library; changes nothing",
                        observed, lost, ok and lost == 0))  # fmt: skip
        else:
            waited = "waiting for" in other.output
            summary = next((ln for ln in other.lines("emotion: tagged")), "")
            observed = (
                f"first: tagged {one}; second (--wait): "
                f"{'waited, then ' if waited else 'did not wait; '}"
                f"{summary.strip().removeprefix('emotion: ') or 'no summary'}"
            )
            ok = one == len(names) and waited and other.returncode == 0 and _tagged(other) == 0
            ctx.add(Row("concurrency", "a second run with --wait",
                        "waits for the first, then finds every item done (skipped)",
                        observed, lost, ok and lost == 0))  # fmt: skip


def _start_when_locked(
    scratch: Scratch,
    lock: Path,
    first: subprocess.Popen[str],
    args: Sequence[str],
    results: list[RunResult],
) -> threading.Thread:
    """Once ``first`` holds the library lock (the file names its pid), run ``beet ARGS`` in a
    thread; its result lands in ``results``."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and first.poll() is None:
        with suppress(OSError):
            if lock.read_text().strip():
                break
        time.sleep(0.05)
    runner = threading.Thread(target=lambda: results.append(scratch.beet(*args)))
    runner.start()
    return runner


# --------------------------------------------------------------------------- hostile lyrics


HOSTILE_OFFSET = (
    "[offset:-99999999999999999999999999999]\n[00:01.00]hello there\n[00:02.50]my friend\n"
)
HOSTILE_LRC = "[00:00.40]rain falls on the window\n[00:01.60]and I miss you\n"


def _finite_values(scratch: Scratch, name: str) -> bool:
    """Every float field of the item, in the database and in its file, is a finite number."""
    from beetsplug.emotion import fields, tags

    for key in fields.FLOAT_FIELDS:
        value = _field(scratch, name, key)
        try:
            if value is None or not np.isfinite(float(value)):
                return False
        except (TypeError, ValueError):
            return False
    written = tags.read_tags(scratch.tracks[name].path)
    return not any("nan" in str(written.get(key, "")).lower() for key in fields.FLOAT_FIELDS)


def _sparse_or_real(path: Path, size: int = 16 * 2**30) -> str:
    """A ``size`` sparse file at ``path`` (no disk used), or, where the filesystem cannot keep
    it sparse, a real 5 MB one; says which."""
    with suppress(OSError):
        with open(path, "wb") as handle:
            handle.truncate(size)
        if path.stat().st_blocks * 512 < 2**20:
            return f"{size / 2**30:.0f} GB sparse"
    line = b"[00:01.00]la la la la\n"
    path.write_bytes((line * (5 * 2**20 // len(line) + 1))[: 5 * 2**20])
    return "5 MB (no sparse files here)"


def hostile(ctx: Context) -> None:
    """Hostile lyrics: an extreme [offset:], a NaN model result, a 16 GB .lrc beside one of five
    tracks, random bytes in an ID3 USLT frame that beets copies into ``lyrics`` at import."""
    scratch = ctx.scratch("hostile")
    music = scratch.music
    offset = synth(music / "offset.flac", seconds=5)
    offset.with_suffix(".lrc").write_text(HOSTILE_OFFSET)
    scratch.add("offset.flac", offset)
    scratch.add("poisoned.flac", synth(music / "poisoned.flac", seconds=5))
    big = [f"big{n}.flac" for n in range(5)]
    for name in big:
        path = synth(music / name, seconds=5, title=name)
        path.with_suffix(".lrc").write_text(HOSTILE_LRC)
        scratch.add(name, path)
    huge = music / "big2.lrc"
    huge_kind = _sparse_or_real(huge)

    # Random bytes as the text of a real USLT frame (Latin-1: every byte a character; NULs
    # out, or the frame's text would end at the first), imported by beets, which copies the
    # frame into the item's lyrics field.
    from mutagen.id3 import ID3, USLT

    incoming = scratch.root / "incoming"
    junk = synth(incoming / "junk.mp3", seconds=5, title="Junk")
    noise = np.random.default_rng(7).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    id3 = ID3(str(junk))
    id3.add(USLT(encoding=0, lang="eng", desc="", text=noise.replace(b"\0", b"").decode("latin-1")))
    id3.save(str(junk))
    scratch.write_config(auto=False)  # import only; `beet emotion` below does the analysis
    imported = scratch.beet("import", "-A", "-q", str(incoming))
    scratch.write_config()
    scratch.tracks["junk.mp3"] = Track(junk)
    copied = len(str(_field(scratch, "junk.mp3", "lyrics") or ""))
    scratch.snapshot()

    first = scratch.beet("emotion", "-w", mode="nan-result")
    poisoned_state = scratch.state("poisoned.flac", ctx.version)  # database and sha256
    again = scratch.beet("emotion", "-w")  # a healthy model: the poisoned track is done now
    ctx.log(f"  runs: {first.lines('emotion:')[:1]} then {again.lines('emotion:')[:1]}")
    clean = "Traceback" not in first.output + again.output
    if not clean:
        ctx.log(textwrap.indent((first.output + again.output)[-3000:], "  | "))

    state = scratch.state("offset.flac", ctx.version)
    finite = _finite_values(scratch, "offset.flac")
    source = _field(scratch, "offset.flac", "emotion_lyrics")
    gate = float(_field(scratch, "offset.flac", "emotion_gate_lyrics") or 0.0)
    ctx.add(Row("hostile", "[offset:-99999999999999999999999999999] in an .lrc",
                "tagged with finite values (the offset is ignored); run goes on",
                f"{state}; lyrics from {source}, lyrics gate {gate:.2f}; "
                f"values {'all finite' if finite else 'NOT FINITE'} (database and tags)",
                int(is_lost(state)),
                state == "tagged" and finite and source == "lrc" and clean))  # fmt: skip

    path = scratch.tracks["poisoned.flac"].path
    failure = _line_for(first, path)
    redone = scratch.state("poisoned.flac", ctx.version)
    ok = (
        failure is not None
        and "non-finite" in failure
        and poisoned_state == "untouched"
        and _line_for(again, path) is None
        and redone == "tagged"
        and _finite_values(scratch, "poisoned.flac")
        and _tagged(again) == 1  # the poisoned track alone: the rest stayed current
        and clean
    )
    ctx.add(Row("hostile", "the model gives NaN for a track (injected in its result)",
                "one failure line, item untouched (database and file), not marked current: "
                "the next run does it",
                f'failed: "{_reason(failure, path)}"; {poisoned_state}; next run: {redone}',
                int(is_lost(poisoned_state)) + int(is_lost(redone)), ok))  # fmt: skip

    states = [scratch.state(name, ctx.version) for name in big]
    lookups = [line for line in first.lines("lyrics lookup:") if str(huge) in line]
    big2_source = _field(scratch, "big2.flac", "emotion_lyrics")
    ok = (
        states.count("tagged") == 5
        and len(lookups) == 1
        and "too large" in lookups[0]
        and big2_source == "none"
        # the poisoned track of the same run fails on purpose, so the run exits 1 (not a crash)
        and first.returncode == 1
        and bool(first.lines("emotion: tagged"))
        and clean
    )
    shown = (
        lookups[0].removeprefix("lyrics lookup: ").replace(str(music) + "/", "")
        if lookups
        else "no line"
    )
    ctx.add(Row("hostile", f"a {huge_kind} song.lrc beside one of 5 tracks",
                "5/5 tagged; one line naming the file and its size; its track gets no lyrics",
                f'{states.count("tagged")}/5 tagged; lyrics lookup: "{shown}"; big2 lyrics from '
                f"{big2_source}; peak RSS {first.peak_rss_mb:.0f} MB",
                sum(map(is_lost, states)), ok))  # fmt: skip

    state = scratch.state("junk.mp3", ctx.version)
    source = _field(scratch, "junk.mp3", "emotion_lyrics")
    gate = _field(scratch, "junk.mp3", "emotion_gate_lyrics")
    gate_text = f"{float(gate):.2f}" if gate not in (None, "") else "none"
    ok = (
        imported.returncode == 0
        and copied > 1000
        and state == "tagged"
        and source not in ("beets", "embedded")
        and gate is not None
        and float(gate) == 0.0
        and clean
    )
    ctx.add(Row("hostile", "random bytes in an ID3 USLT frame (beets copied them into lyrics)",
                "not lyrics from any source: tagged from the audio alone, lyrics gate 0",
                f"beets field after import: {copied} characters; {state}; lyrics from {source}, "
                f"lyrics gate {gate_text}",
                int(is_lost(state)), ok))  # fmt: skip


# --------------------------------------------------------------------------- full disk


@contextmanager
def tmpfs(folder: Path, size: str = "8m") -> Iterator[str]:
    """A tmpfs of ``size`` on ``folder`` for the block. Yields "" when mounted, else why not
    (not root, mounting not permitted): ``folder`` is then an ordinary folder."""
    folder.mkdir(parents=True, exist_ok=True)
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        yield "mounting a tmpfs needs root"
        return
    command = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        yield f"cannot mount a tmpfs ({error})"
        return
    if done.returncode != 0:
        yield f"cannot mount a tmpfs ({' '.join(done.stderr.split()) or done.returncode})"
        return
    try:
        yield ""
    finally:
        gone = subprocess.run(["umount", str(folder)], capture_output=True, check=False)
        if gone.returncode != 0:  # a straggling process holds a file: detach it anyway
            subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def fill_disk(folder: Path) -> Path:
    """Fill the filesystem of ``folder`` to its last byte; delete the file returned to free it."""
    import errno

    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as out:
        for block in (1 << 20, 4096, 1):
            while True:
                try:
                    out.write(bytes(block))
                except OSError as error:
                    if error.errno not in (errno.ENOSPC, errno.EFBIG):
                        raise
                    break
    return filler


def no_padding(path: Path, align: int = 4096) -> Path:
    """Rewrite the file's tags with no padding: any tag that grows must move the audio (the
    case of issue 22: a 396-byte ID3 tag, no padding). A filler tag makes the size a multiple
    of ``align``, so that the growth cannot fit in the unused end of the file's last block
    (a write that fits there needs no new space and rightly succeeds on a full disk)."""
    import mutagen
    from mutagen.id3 import TXXX

    def save(filler: int) -> int:
        audio = mutagen.File(str(path))
        if hasattr(audio.tags, "add"):  # ID3
            audio.tags.delall("TXXX:FILL")
            if filler:
                audio.tags.add(TXXX(encoding=3, desc="FILL", text=["x" * filler]))
        elif filler:
            audio["FILL"] = "x" * filler
        audio.save(padding=lambda info: 0)
        return path.stat().st_size

    bare = save(0)
    if align and bare % align:
        overhead = save(1) - bare - 1
        filler = -(bare + overhead) % align or align
        save(filler)
    return path


def file_size_limit(limit: int) -> Callable[[], None]:
    """``preexec``: the child may not write a file past ``limit`` bytes (``RLIMIT_FSIZE``):
    writes there fail with EFBIG, as they fail with ENOSPC on a full disk. SIGXFSZ, which
    would kill the process instead, is ignored (an ignored signal stays so across exec)."""

    def preexec() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def decoded(path: Path) -> str | None:
    """sha256 of the file's decoded samples: the same before and after a tag write."""
    from lgfn_model.data.audio import decode_audio

    try:
        return hashlib.sha256(decode_audio(path, 16000).samples.tobytes()).hexdigest()
    except Exception:
        return None


def temp_leftovers(folder: Path) -> list[str]:
    from beetsplug.emotion.safe_save import TEMP_SUFFIX

    return sorted(p.name for p in folder.iterdir() if TEMP_SUFFIX in p.name)


def disk(ctx: Context) -> None:
    ctx.add(_disk_files(ctx), _disk_database(ctx))


def _disk_files(ctx: Context) -> Row:
    """Files on a full filesystem, every tag write one that must grow the file."""
    scratch = ctx.scratch("disk-files")
    folder = scratch.root / "full"
    with tmpfs(folder, "8m") as why_not:
        names = ["grow.mp3", "grow.flac", "linked.mp3"]
        for name in names:
            scratch.add(name, no_padding(synth(folder / name, seconds=8, title=name)))
        link = folder / "linked-elsewhere.mp3"
        os.link(folder / "linked.mp3", link)  # a hard link: no rename, rewritten in place
        scratch.snapshot()
        audio = {name: decoded(folder / name) for name in names}
        preexec = None
        if why_not:
            how = f"injected: RLIMIT_FSIZE, EFBIG ({why_not})"
            sizes = [(folder / name).stat().st_size for name in names]
            preexec = file_size_limit(min(sizes) + 16)
        else:
            how = "real tmpfs, filled"
            filler = fill_disk(folder)
        result = scratch.beet("emotion", "-w", preexec=preexec)
        states = {name: scratch.state(name, ctx.version) for name in names}
        lines = [_line_for(result, folder / name) for name in names]
        left = temp_leftovers(folder)
        if not why_not:
            filler.unlink()
        rerun = scratch.beet("emotion", "-w")
        after = {name: scratch.state(name, ctx.version) for name in names}
        same_audio = sum(decoded(folder / name) == audio[name] for name in names)
        copy = fingerprint(folder / "linked.mp3")
        linked = link.stat().st_nlink == 2 and fingerprint(link) == copy
    unchanged = sum(state == "untouched" for state in states.values())
    reason = _reason(lines[0], folder / names[0])
    tagged = sum(state == "tagged" for state in after.values())
    observed = (
        f'{how}: {sum(line is not None for line in lines)}/{len(names)} failed: "{reason}"; '
        f"sha256 unchanged {unchanged}/{len(names)}; temp files left {len(left)}; after "
        f"freeing space: {tagged}/{len(names)} tagged, audio identical {same_audio}/"
        f"{len(names)}, hard link kept: {'yes' if linked else 'no'}"
    )
    ok = (
        all(line is not None and "cannot write tags" in line for line in lines)
        and unchanged == len(names)
        and not left
        and tagged == same_audio == len(names)
        and linked
        and result.returncode == 1  # files failed: exit 1
        and rerun.returncode == 0
        and "Traceback" not in result.output + rerun.output
    )
    lost = sum(s != "untouched" for s in states.values())
    lost += sum(s != "tagged" for s in after.values())
    return Row("disk", "full disk under the music: each tag must grow its file (no padding; "
               "one file hard-linked)", "one failure line per file, each byte for byte as it "
               "was; after freeing space all tagged, the audio unchanged",
               observed, lost, ok)  # fmt: skip


def _disk_database(ctx: Context) -> Row:
    """The library database on a filesystem that fills up while the run writes files."""
    from beetsplug.emotion.library_lock import SUFFIX

    root = ctx.workdir / "disk-db"
    with tmpfs(root, "8m") as why_not:
        scratch = Scratch(root, ctx.checkpoint)  # config and database on the tmpfs
        outside = ctx.workdir / "disk-db-music"
        names = [f"s{n}.flac" for n in range(6)]
        for name in names:
            scratch.add(name, synth(outside / name, seconds=4, title=name))
        scratch.snapshot()
        fillers: list[Path] = []
        if why_not:
            how = f"injected: database capped at its size and filled, SQLITE_FULL ({why_not})"
            result = scratch.beet("emotion", "-w", mode="db-full")
        else:
            how = "real tmpfs, filled once the run holds the library"
            lock = Path(str(root / "library.db") + SUFFIX)

            def fill_when_locked(process: subprocess.Popen[str]) -> None:
                # The lock file is written at the start (a disk full before the run is
                # another matter, see docs/robustness.md); fill the disk right after it.
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline and process.poll() is None:
                    with suppress(OSError):
                        if lock.read_text().strip():
                            break
                    time.sleep(0.02)
                fillers.append(fill_disk(root))

            result = scratch.beet("emotion", "-w", mode="slow-write", on_start=fill_when_locked)
        states = {name: scratch.state(name, ctx.version) for name in names}
        half = {name for name, state in states.items() if is_lost(state)}
        listed = {
            name
            for name in names
            if any(str(outside / name) in line for line in result.lines("not stored:"))
        }
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        head = next((ln for ln in result.lines("emotion: tagged")), "no summary")
        for filler in fillers:
            filler.unlink()
        rerun = scratch.beet("emotion", "-w")
        after = {name: scratch.state(name, ctx.version) for name in names}
    again = next((ln for ln in rerun.lines("emotion: tagged")), "no summary")
    tagged = sum(state == "tagged" for state in states.values())
    observed = (
        f'{how}: exit {result.returncode}, "{errors[-1] if errors else "no error line"}"; '
        f'summary "{head.removeprefix("emotion: ")}"; {len(listed)} listed as not stored, '
        f"{len(half)} written and not stored, {tagged} tagged, "
        f"{len(names) - len(half) - tagged} untouched; traceback: "
        f"{'yes' if 'Traceback' in result.output else 'no'}; rerun after freeing space: "
        f"{again.removeprefix('emotion: ')}"
    )
    ok = (
        result.returncode != 0
        and len(errors) == 1
        and "cannot store results" in errors[0]
        and "Traceback" not in result.output + rerun.output
        and head != "no summary"
        and half
        and listed == half
        and set(states.values()) <= {"tagged", "untouched", "file changed, database not "
                                     "(half-written)"}
        and rerun.returncode == 0
    )  # fmt: skip
    lost = sum(state != "tagged" for state in after.values())
    return Row("disk", "full disk under the library database (fills during the run)",
               "one error line, the summary listing the files written and not stored, exit 1; "
               "a re-run after freeing space completes", observed, lost, bool(ok))  # fmt: skip


# --------------------------------------------------------------------------- stuck


DRIP_PREFIX = b"HTTP/1.1 200 OK\r\nX-Drip: "
"""What a drip server sends, a byte at a time, before an endless header value."""


@dataclass
class Drip:
    """A running drip server: its address, and whether anything has connected yet."""

    port: int
    connected: threading.Event = field(default_factory=threading.Event)
    connections: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def drip_server(interval: float = 2.0, head: bytes = b"") -> Iterator[Drip]:
    """A local server that answers every connection with one byte every ``interval``
    seconds, for ever: an HTTP status line, then a header that never ends (``head``, when
    given, goes out at once and the drip carries on as the body). Every read gets a byte in
    time, so no read timeout ever trips. As HTTPS_PROXY it drips the answer to CONNECT."""
    import select

    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)
    drip = Drip(server.getsockname()[1])
    stop = threading.Event()

    def serve() -> None:
        sent: dict[socket.socket, int] = {}
        tick = time.monotonic() + interval
        while not stop.is_set():
            wait = max(0.0, min(0.2, tick - time.monotonic()))
            if select.select([server], [], [], wait)[0]:
                with suppress(OSError):
                    conn, _ = server.accept()
                    conn.sendall(head)
                    sent[conn] = len(DRIP_PREFIX) if head else 0
                    drip.connections += 1
                    drip.connected.set()
            if time.monotonic() < tick:
                continue
            tick += interval
            for conn, count in list(sent.items()):
                try:
                    conn.send(DRIP_PREFIX[count : count + 1] or b"a")
                    sent[conn] = count + 1
                except OSError:  # the client gave up: forget it
                    conn.close()
                    del sent[conn]
        for conn in sent:
            conn.close()

    thread = threading.Thread(target=serve, name="drip-server", daemon=True)
    thread.start()
    try:
        yield drip
    finally:
        stop.set()
        thread.join()
        server.close()


PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")


class ProxiedScratch(Scratch):
    """A scratch library whose beet processes reach the network through ``proxy`` (the
    real route: requests reads HTTPS_PROXY; nothing is patched in the child)."""

    proxy: str | None = None

    def env(self) -> dict[str, str]:
        env = super().env()
        for name in (*PROXY_VARIABLES, "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
            env.pop(name, None)
        if self.proxy:
            env.update(dict.fromkeys(PROXY_VARIABLES, self.proxy))
        return env


def exit_time(pid: int, limit: float) -> float | None:
    """When (monotonic) child ``pid`` exits, None if not within ``limit`` s; it is left
    unreaped (WNOWAIT), for ``Scratch.beet`` to wait for and measure."""
    deadline = time.monotonic() + limit
    while True:
        found = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if found is not None and found.si_pid == pid:
            return time.monotonic()
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.02)


def group_members(group: int) -> list[tuple[int, str]]:
    """(pid, command line) of the live (not zombie) processes of process group ``group``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue  # gone meanwhile
        state, _, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == group and state != "Z":
            found.append((int(entry.name), command))
    return found


def _kind(command: str) -> str:
    if "resource_tracker" in command:
        return "resource tracker"
    if "spawn_main" in command:
        return "decoding worker"
    return "beet" if MODULE in command else command[:60]


def stuck(ctx: Context) -> None:
    ctx.add(_dripping_network(ctx))
    ctx.add(_killed_runs(ctx))


def _dripping_network(ctx: Context) -> Row:
    """Every network source through a proxy that answers a byte every 2 s; then Ctrl-C
    during such a lookup."""
    tracks, timeout, threads, interval = 8, 10.0, 4, 2.0
    scratch = ProxiedScratch(
        ctx.workdir / "stuck-network",
        ctx.checkpoint,
        lyrics_sources=["beets", "lrc", "embedded", "syncedlyrics", "genius"],
        syncedlyrics_providers=["lrclib", "musixmatch", "netease"],
        genius_token=TOKEN,
        lyrics_timeout=timeout,
        lyrics_threads=threads,
    )
    names = [f"drip{n}.flac" for n in range(tracks)]
    for n, name in enumerate(names):
        scratch.add(name, synth(scratch.music / name, seconds=5, title=f"Song {n}"))
    scratch.snapshot()
    scratch.write_config(lyrics_sources=["beets", "lrc", "embedded"])
    baseline = scratch.beet("emotion", "-w")
    ctx.log(f"  baseline (network sources off): {baseline.seconds:.1f} s")
    scratch.write_config()
    timing: dict[str, float] = {}

    with drip_server(interval) as drip:
        scratch.proxy = drip.url
        result = scratch.beet("-vv", "emotion", "-w", "-f")
        drip.connected.clear()

        def interrupt(process: subprocess.Popen[str]) -> None:
            if not drip.connected.wait(120):
                return
            time.sleep(1.0)  # well inside the lookup: its budget is 10 s
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
            sent = time.monotonic()
            ended = exit_time(process.pid, 60.0)
            timing["exit"] = (ended or time.monotonic()) - sent
            timing["exited"] = float(ended is not None)

        stopped = scratch.beet("emotion", "-w", "-f", on_start=interrupt)
        connections = drip.connections
    states = [scratch.state(name, ctx.version) for name in names]
    lost = sum(map(is_lost, states))
    tagged = _tagged(result)
    sources = {_field(scratch, name, "emotion_lyrics") for name in names}
    leaked = TOKEN in result.output + stopped.output
    extra = result.seconds - baseline.seconds
    # Each lookup costs at most one budget until three failures switch its source off: with
    # 4 threads one wave of lookups does that, plus the lookups that began while the wave's
    # failures were being counted (another wave at most). Two sources, one after the other.
    waves = -(-3 // threads) + 1
    bound = timeout * 2 * waves + 10.0
    switched = "not asking" in result.output
    summary = next(iter(stopped.lines("emotion: tagged")), "")
    exit_s = timing.get("exit", float("nan"))
    observed = (
        f"{tagged}/{tracks} tagged, lyrics {'/'.join(sorted(map(str, sources)))}; "
        f"{result.seconds:.1f} s (+{extra:.1f} s vs network off, budget {timeout:g} s per "
        f"source); {len(result.lines('lyrics lookup:'))} lookup lines"
        f"{'; sources switched off' if switched else ''}; Ctrl-C in a drip lookup: exited "
        f"{exit_s:.1f} s later, {summary.removeprefix('emotion: ') or 'no summary'}"
        f"{'; a process was left running' if stopped.orphans else ''}; "
        f"{connections} connections dripped; token in output: {'YES' if leaked else 'no'}"
    )
    ok = (
        tagged == tracks
        and result.returncode == 0
        and sources == {"none"}
        and extra < bound
        and not leaked
        and timing.get("exited") == 1.0
        and exit_s < 5.0
        and "interrupted" in summary
        and not stopped.orphans
        and not result.orphans
    )
    return Row(
        "stuck",
        f"server drips one byte every {interval:g} s",
        "no lyrics from the network, run goes on; a lookup costs at most lyrics_timeout, "
        "reads included (one or two per source before it is switched off); Ctrl-C ends the "
        "run within seconds",
        observed,
        lost,
        ok and lost == 0,
    )


def _killed_runs(ctx: Context) -> Row:
    """kill -9 of a run with decoding workers, three times: nothing of it may survive."""
    scratch = ctx.scratch("stuck-kill", workers=2)
    names = [f"k{n:02d}.flac" for n in range(12)]
    for name in names:
        scratch.add(name, synth(scratch.music / name, seconds=4, title=name))
    scratch.snapshot()
    left: list[list[str]] = []
    before: list[list[str]] = []
    for _ in range(3):

        def kill(process: subprocess.Popen[str]) -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and exit_time(process.pid, 0.0) is None:
                members = group_members(process.pid)
                if any(_kind(c) == "decoding worker" for _, c in members):
                    break
                time.sleep(0.05)
            # Decoding is under way; kill at once: on a fast CPU the workers have decoded all
            # twelve short files and exited within a second or so.
            time.sleep(0.1)
            before.append(sorted(_kind(c) for _, c in group_members(process.pid)))
            process.send_signal(signal.SIGKILL)  # the beet process alone, as the OOM killer
            time.sleep(3.0)
            members = group_members(process.pid)  # the beet process itself: a zombie
            left.append(sorted(_kind(c) for pid, c in members if pid != process.pid))

        scratch.beet("emotion", "-w", "-f", mode="slow-write", on_start=kill)
    rerun = scratch.beet("emotion", "-w")
    states = [scratch.state(name, ctx.version) for name in names]
    lost = sum(is_lost(s) or s != "tagged" for s in states)
    workers_ran = all("decoding worker" in kinds for kinds in before)
    observed = (
        f"3 kills; processes left 3 s later: {', '.join(str(len(k)) for k in left)}"
        + "".join(f" ({', '.join(k)})" for k in left if k)
        + f"; before each kill: {'; '.join(', '.join(k) for k in before)}; rerun: "
        + next(iter(rerun.lines("emotion: tagged")), "no summary").removeprefix("emotion: ")
    )
    ok = workers_ran and not any(left) and rerun.returncode == 0
    return Row(
        "stuck",
        "kill -9 mid-run: no process left behind",
        "the decoding workers and the resource tracker exit with the beet process",
        observed,
        lost,
        ok and lost == 0,
    )


# --------------------------------------------------------------------------- child process


def _child(mode: str, args: Sequence[str]) -> int:
    """Inside a beet process: install the fault, then run beets' own command line."""
    # As at a terminal: a catalogue started in the background (``nohup ... &``) passes an
    # ignored SIGINT on to its children, and Ctrl-C would never reach them.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if mode.startswith("net-"):
        _install_network_fault(mode)
    elif mode == "slow-write":
        from beetsplug.emotion import tags

        real = tags.write_tags

        def slow(*a: Any, **kw: Any) -> None:
            real(*a, **kw)
            time.sleep(0.4)  # widen the window between the file write and the database store

        tags.write_tags = slow  # type: ignore[assignment]
    elif mode.startswith("oom-"):
        import torch

        from lgfn_model.runtime.predictor import Predictor

        limit = 2 if mode == "oom-batch" else 0
        real_load = Predictor.load.__func__  # type: ignore[attr-defined]

        def load(cls: type, *a: Any, **kw: Any) -> Any:
            predictor = real_load(cls, *a, **kw)
            forward = predictor.model.forward

            def failing(waveforms: Any, *fa: Any, **fkw: Any) -> Any:
                if waveforms.shape[0] > limit:
                    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 4.00 GiB")
                return forward(waveforms, *fa, **fkw)

            predictor.model.forward = failing
            return predictor

        Predictor.load = classmethod(load)  # type: ignore[method-assign, assignment]
    if mode == "db-full":
        from beets.dbcore import db as dbcore

        real_connect = dbcore.Database._create_connection

        def full(self: Any) -> Any:
            import sqlite3

            connection = real_connect(self)
            # The database may not grow past its present size, and the room left in its pages
            # is taken (filler attributes of no item): a store then gets SQLITE_FULL,
            # "database or disk is full", as it does when the disk under it is full.
            connection.execute("PRAGMA max_page_count = 1")
            count = 0
            for size in (512, 64, 1):
                while True:
                    count += 1
                    try:
                        connection.execute(
                            "INSERT INTO item_attributes (entity_id, key, value) VALUES (0, ?, ?)",
                            (f"catalogue-filler-{os.getpid()}-{count}", "x" * size),
                        )
                        connection.commit()
                    except sqlite3.OperationalError:
                        connection.rollback()
                        break
            return connection

        dbcore.Database._create_connection = full  # type: ignore[method-assign]
    if mode == "nan-result":
        from lgfn_model.runtime.predictor import Predictor

        real_finish = Predictor._finish

        def poisoned(self: Any, track: Any) -> Any:
            # NaN where the model's results are built, for the tracks named so: what an input
            # that overflows the model (an extreme [offset:] did) gives.
            prediction = real_finish(self, track)
            if Path(track.item.audio).stem.startswith("poisoned"):
                prediction.valence = float("nan")
                prediction.probabilities = dict.fromkeys(prediction.probabilities, float("nan"))
            return prediction

        Predictor._finish = poisoned  # type: ignore[method-assign]
    from beets import ui

    ui.main(list(args))
    return 0


# --------------------------------------------------------------------------- main


SECTIONS: dict[str, Callable[[Context], None]] = {
    "files": bad_files,
    "long": long_file,
    "network": network,
    "interruption": interruption,
    "gpu": gpu,
    "checkpoints": checkpoints,
    "stuck": stuck,
    "disk": disk,
    "hostile": hostile,
    "locking": locking,
}


def render(rows: Sequence[Row]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    out = ["| | fault | expected | observed | items lost |", "|---|---|---|---|---|"]
    for row in rows:
        mark = "ok" if row.ok else "**FAILED**"
        out.append(
            f"| {mark} | {cell(row.group)}: {cell(row.fault)} | {cell(row.expected)} | "
            f"{cell(row.observed)} | {row.lost} |"
        )
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        mode = argv[1]
        rest = argv[3:] if argv[2:3] == ["--"] else argv[2:]
        return _child(mode, rest)
    parser = argparse.ArgumentParser(
        prog="python -m tools.fault_catalogue",
        description="Run every fault of docs/robustness.md against a scratch beets library "
        "and print a table: fault, expected behaviour, observed, items lost.",
    )
    parser.add_argument("--checkpoint", help="model folder or shipped model (default, fast)")
    parser.add_argument(
        "--tiny", action="store_true", help="use a tiny random model (fast; for smoke runs)"
    )
    parser.add_argument(
        "--long-minutes", type=float, default=120.0, help="length of the long file (default 120)"
    )
    parser.add_argument(
        "--only", nargs="+", choices=sorted(SECTIONS), help="run only these sections"
    )
    parser.add_argument("--dir", type=Path, help="scratch folder (default: a temp dir, removed)")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    options = parser.parse_args(argv)

    workdir = options.dir or Path(tempfile.mkdtemp(prefix="lgfn-faults-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        from lgfn_model.runtime.checkpoint_files import resolve_checkpoint

        checkpoint = (
            resolve_checkpoint(options.checkpoint).resolve() if options.checkpoint else None
        )
        if options.tiny:
            from lgfn_model.testing import write_tiny_checkpoint

            checkpoint = write_tiny_checkpoint(workdir / "tiny-model")
        from lgfn_model.runtime.checkpoint_files import checkpoint_version

        version = checkpoint_version(checkpoint)
        ctx = Context(workdir, checkpoint, version, options.long_minutes)
        print(f"fault catalogue: model {version}, scratch {workdir}, {os.cpu_count()} CPU(s)")
        for name in options.only or SECTIONS:
            started = time.monotonic()
            print(f"{name}:")
            SECTIONS[name](ctx)
            print(f"  ({time.monotonic() - started:.0f} s)")
        table = render(ctx.rows)
        print()
        print(table)
        lost = sum(row.lost for row in ctx.rows)
        failed = sum(not row.ok for row in ctx.rows)
        print(f"\n{len(ctx.rows)} faults, {failed} failed, {lost} items lost")
        if options.markdown:
            options.markdown.write_text(table + "\n")
        return 1 if failed or lost else 0
    finally:
        if options.dir is None:
            _remove(workdir)


def _remove(path: Path) -> None:
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            with suppress(OSError):
                os.chmod(os.path.join(root, name), 0o755)
    shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
