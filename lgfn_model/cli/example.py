"""`lgfn example DIR`: write a small, licence-clean example song with synced lyrics.

The song is synthesised here (no recording, so nothing to license): 24 s of a bright
I-V-vi-IV progression at 128 bpm with bass, kick and hi-hat, and an LRC file of lines
timed to it. It exists so a new user can run the whole pipeline in one command.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

RATE = 44100
BPM = 128
# C major: I - V - vi - IV, one chord per bar (MIDI note numbers).
PROGRESSION = ((60, 64, 67), (55, 59, 62), (57, 60, 64), (53, 57, 60))
LYRICS = (
    (0.5, "Sunlight on the water, we are running to the sea"),
    (4.3, "Every little heartbeat sings a song for you and me"),
    (8.0, "Dance until the morning, let the summer set us free"),
    (11.8, "Hold my hand and jump, it is the best day there could be"),
    (15.5, "Sunlight on the water, we are running to the sea"),
    (19.3, "Every little heartbeat sings a song for you and me"),
)


def _tone(freq: float, seconds: float, decay: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    envelope = np.exp(-t / decay) * np.minimum(1.0, t * 200)
    wave = sum(np.sin(2 * np.pi * freq * k * t) / k**1.5 for k in range(1, 5))
    return (wave * envelope).astype(np.float32)


def synthesise(seconds: float = 24.0, seed: int = 0) -> np.ndarray:
    """Stereo float32 (frames, 2)."""
    rng = np.random.default_rng(seed)
    beat = 60.0 / BPM
    total = int(seconds * RATE)
    left = np.zeros(total, dtype=np.float32)
    right = np.zeros(total, dtype=np.float32)

    def add(signal: np.ndarray, start: float, pan: float) -> None:
        begin = int(start * RATE)
        end = min(total, begin + len(signal))
        if begin < total:
            left[begin:end] += signal[: end - begin] * (1 - pan)
            right[begin:end] += signal[: end - begin] * pan

    n_beats = int(seconds / beat)
    for b in range(n_beats):
        chord = PROGRESSION[(b // 4) % len(PROGRESSION)]
        start = b * beat
        # Arpeggio in eighth notes, an octave up, alternating sides.
        for half in range(2):
            note = chord[(2 * b + half) % 3] + 12
            add(
                _tone(440 * 2 ** ((note - 69) / 12), beat, 0.18) * 0.12,
                start + half * beat / 2,
                0.35 + 0.3 * half,
            )
        if b % 4 == 0:
            for note in chord:
                add(_tone(440 * 2 ** ((note - 69) / 12), 4 * beat, 0.9) * 0.07, start, 0.5)
            add(_tone(440 * 2 ** ((chord[0] - 24 - 69) / 12), 4 * beat, 1.2) * 0.25, start, 0.5)
        t = np.arange(int(0.25 * RATE)) / RATE
        kick = np.sin(2 * np.pi * (50 + 80 * np.exp(-t * 30)) * t) * np.exp(-t * 12)
        add(kick.astype(np.float32) * 0.5, start, 0.5)
        hat = rng.standard_normal(int(0.05 * RATE)).astype(np.float32)
        hat *= np.exp(-np.arange(len(hat)) / RATE * 80).astype(np.float32)
        add(np.diff(hat, prepend=0) * 0.08, start + beat / 2, 0.6)
    stereo = np.stack([left, right], axis=1)
    return (0.8 * stereo / max(1e-6, float(np.abs(stereo).max()))).astype(np.float32)


def lrc_text() -> str:
    lines = ["[ti:Sunlight (lgfn example)]", "[ar:beets-lgfn]"]
    lines += [f"[{int(t // 60):02d}:{t % 60:05.2f}]{text}" for t, text in LYRICS]
    return "\n".join(lines) + "\n"


def write_example(directory: Path) -> tuple[Path, Path]:
    import soundfile

    directory.mkdir(parents=True, exist_ok=True)
    audio = directory / "example.flac"
    lyrics = directory / "example.lrc"
    soundfile.write(audio, synthesise(), RATE, subtype="PCM_16")
    lyrics.write_text(lrc_text(), encoding="utf-8")
    return audio, lyrics


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "example",
        help="write a small synthesised example song with synced lyrics",
        description="Write DIR/example.flac (24 s, synthesised) and DIR/example.lrc.",
    )
    parser.add_argument("directory", help="folder to write into (created if needed)")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    audio, lyrics = write_example(Path(args.directory))
    print(f"{audio}\n{lyrics}")
    return 0
