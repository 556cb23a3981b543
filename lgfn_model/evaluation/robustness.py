"""`lgfn robustness`: do predicted moods survive the formats and loudness users have?

The training audio is mono Opus at 32 kbit/s; users' files are MP3, FLAC, AAC at any gain.
For every held-out clip with audio this writes three variants into a scratch folder — stereo
MP3 at 192 kbit/s, and FLAC at -6 dB and +6 dB (clipped at full scale, as a loud master
would be) — runs the real predictor (file decoding included) on the originals and on each
variant, and reports how often the predicted mood agrees with the original's.
"""

from __future__ import annotations

import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

VARIANTS = ("mp3_192k_stereo", "gain_-6db", "gain_+6db")
USER_RATE = 44100


def write_mp3(path: Path, mono: np.ndarray, rate: int, bit_rate: int = 192_000) -> None:
    import av

    stereo = np.ascontiguousarray(np.stack([mono, mono]), dtype=np.float32)
    with av.open(str(path), "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=rate, layout="stereo")
        stream.bit_rate = bit_rate
        frame = av.AudioFrame.from_ndarray(stereo, format="fltp", layout="stereo")
        frame.sample_rate = rate
        frame.pts, frame.time_base = 0, Fraction(1, rate)
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def write_variants(source: Path, folder: Path) -> dict[str, Path]:
    import soundfile
    import soxr

    data, rate = soundfile.read(str(source), dtype="float32", always_2d=True)
    # Users' files are CD-rate; MP3 at 192 kbit/s needs MPEG-1 rates anyway.
    mono = soxr.resample(data.mean(axis=1), rate, USER_RATE).astype(np.float32)
    rate = USER_RATE
    paths = {
        "mp3_192k_stereo": folder / f"{source.stem}-mp3.mp3",
        "gain_-6db": folder / f"{source.stem}-quiet.flac",
        "gain_+6db": folder / f"{source.stem}-loud.flac",
    }
    write_mp3(paths["mp3_192k_stereo"], mono, rate)
    for name, gain_db in (("gain_-6db", -6.0), ("gain_+6db", 6.0)):
        scaled = np.clip(mono * 10 ** (gain_db / 20), -1.0, 1.0)
        soundfile.write(str(paths[name]), scaled, rate, subtype="PCM_24")
    return paths


def run_robustness(
    data: Path,
    checkpoint: Path | None,
    device: str = "auto",
    workers: int | None = None,
    limit: int | None = None,
    scratch: Path | None = None,
) -> dict[str, Any]:
    from lgfn_model.runtime.predictor import Predictor, TrackInput
    from lgfn_model.training.datasets import load_examples
    from lgfn_model.training.splits import make_split

    split = make_split("heldout", load_examples(data))
    clips = [e for e in split.test if e.audio is not None][:limit]
    predictor = Predictor.load(checkpoint, device=device, workers=workers)
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        folder = Path(tmp)
        variants = [write_variants(Path(e.audio), folder) for e in clips]  # type: ignore[arg-type]
        inputs = [TrackInput(Path(e.audio), key=("original", i)) for i, e in enumerate(clips)]  # type: ignore[arg-type]
        for i, paths in enumerate(variants):
            inputs += [TrackInput(path, key=(name, i)) for name, path in paths.items()]
        moods: dict[str, dict[int, str]] = {name: {} for name in ("original", *VARIANTS)}
        errors = []
        for result in predictor.predict_many(inputs):
            name, index = result.input.key
            if result.prediction is None:
                errors.append(result.error)
            else:
                moods[name][index] = result.prediction.mood
    report: dict[str, Any] = {"model": predictor.version, "clips": len(clips), "errors": errors}
    for name in VARIANTS:
        common = [i for i in moods["original"] if i in moods[name]]
        agree = sum(moods["original"][i] == moods[name][i] for i in common)
        report[name] = {"n": len(common), "agreement": agree / len(common) if common else None}
    return report
