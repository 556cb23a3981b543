"""Check the PyTorch port of musicnn's MSD tagger against the original TensorFlow model.

Two steps, two Python environments (TensorFlow is never a dependency of this project):

1. In a throwaway venv with TensorFlow and the original package, e.g.
   ``python -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu==2.15.1 librosa
   && /tmp/tfvenv/bin/pip install --no-deps musicnn==0.1.0``, from the repository root::

       /tmp/tfvenv/bin/python -m tools.verify_musicnn reference --out REF.npz AUDIO...

   runs musicnn's own graph (``musicnn.models.define_model``, ``tf.compat.v1``) and librosa's
   log-mel on random input and on the audio files, and stores inputs and outputs.
2. In the project's venv::

       python -m tools.verify_musicnn compare REF.npz

   runs the port on the same inputs (and the port's own input pipeline on the same 16 kHz
   waveforms, and on :func:`lgfn_model.data.audio.decode_audio`'s decoding of the files) and prints
   the largest absolute differences.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

OUTPUTS = (
    "tags",
    "logits",
    "penultimate",
    "max_pool",
    "mean_pool",
    "timbral",
    "temporal",
    "cnn1",
    "cnn2",
    "cnn3",
)


def _librosa_log_mel(y: np.ndarray, pad_mode: str) -> np.ndarray:
    import librosa

    mel = librosa.feature.melspectrogram(
        y=y, sr=16000, hop_length=256, n_fft=512, n_mels=96, pad_mode=pad_mode
    ).T
    # as musicnn's extractor.batch_data; with numpy 1.x the product is float32
    return np.log10(10000 * mel.astype(np.float16).astype(np.float32) + 1)


def reference(out: Path, audio: list[Path], seed: int = 0) -> None:
    """Step 1 (TensorFlow venv): the original model's outputs."""
    import librosa
    import musicnn
    import tensorflow as tf
    from musicnn import models

    tf.compat.v1.disable_eager_execution()
    ckpt = str(Path(musicnn.__file__).parent / "MSD_musicnn") + "/"

    def run(batch: np.ndarray) -> dict[str, np.ndarray]:
        tf.compat.v1.reset_default_graph()
        with tf.name_scope("model"):
            x = tf.compat.v1.placeholder(tf.float32, [None, batch.shape[1], 96])
            is_training = tf.compat.v1.placeholder(tf.bool)
            logits, timbral, temporal, cnn1, cnn2, cnn3, mean_pool, max_pool, pen = (
                models.define_model(x, is_training, "MSD_musicnn", 50)
            )
            tags = tf.nn.sigmoid(logits)
        fetch = [tags, logits, pen, max_pool, mean_pool, timbral, temporal, cnn1, cnn2, cnn3]
        with tf.compat.v1.Session() as sess:
            tf.compat.v1.train.Saver().restore(sess, ckpt)
            values = sess.run(fetch, feed_dict={x: batch, is_training: False})
        return {
            k: np.squeeze(v, -1) if v.ndim == 4 else v for k, v in zip(OUTPUTS, values, strict=True)
        }

    rng = np.random.default_rng(seed)
    data: dict[str, np.ndarray] = {
        "input_random": (rng.random((8, 187, 96)) * 4).astype(np.float32),
        "input_random_long": (rng.random((2, 400, 96)) * 4).astype(np.float32),
    }
    names = []
    for i, path in enumerate(audio):
        y, _ = librosa.load(path, sr=16000)  # as musicnn's batch_data
        log_mel = _librosa_log_mel(y, "reflect")  # librosa < 0.10 default, musicnn's time
        n = (log_mel.shape[0] - 187) // 187 + 1
        data[f"wave_{i}"] = y.astype(np.float32)
        data[f"logmel_{i}"] = log_mel
        data[f"logmel_constant_{i}"] = _librosa_log_mel(y, "constant")  # librosa >= 0.10
        data[f"input_clip_{i}"] = np.stack([log_mel[k * 187 : (k + 1) * 187] for k in range(n)])
        names.append(os.fspath(path))
    data["audio"] = np.array(names)
    for key in [k for k in data if k.startswith("input_")]:
        for name, value in run(data[key]).items():
            data[f"tf_{key}_{name}"] = value
    data["versions"] = np.array([f"tensorflow {tf.__version__}", f"librosa {librosa.__version__}"])
    np.savez_compressed(out, **data)
    print(f"wrote {out}: {len(audio)} clips, {data['versions']}")


def compare(ref_path: Path) -> dict[str, float]:
    """Step 2 (project venv): the port on the same inputs; returns the worst differences."""
    import torch

    from lgfn_model.data.audio import decode_audio
    from lgfn_model.pretrained.musicnn import load_musicnn_msd, musicnn_log_mel, musicnn_patches

    torch.set_num_threads(1)
    ref = np.load(ref_path)
    model = load_musicnn_msd()
    report: dict[str, float] = {}

    def worst(key: str, value: float) -> None:
        report[key] = max(report.get(key, 0.0), value)

    for key in sorted(k for k in ref.files if k.startswith("input_")):
        group = "random" if key.startswith("input_random") else "clips"
        with torch.no_grad():
            out = model(torch.from_numpy(ref[key]))
        for name in OUTPUTS:
            diff = np.abs(out[name].numpy() - ref[f"tf_{key}_{name}"])
            worst(f"model/{group}/{name}", float(diff.max()))
            scale = float(np.abs(ref[f"tf_{key}_{name}"]).max())
            worst(f"model/{group}/{name} (relative)", float(diff.max()) / max(scale, 1e-12))

    for i, path in enumerate(ref["audio"]):
        wave = torch.from_numpy(ref[f"wave_{i}"])
        log_mel = musicnn_log_mel(wave)
        diff = np.abs(log_mel.numpy() - ref[f"logmel_{i}"])
        worst("log-mel vs librosa", float(diff.max()))
        worst("log-mel vs librosa: share of values off by > 1e-4", float((diff > 1e-4).mean()))
        interior = np.abs(log_mel.numpy() - ref[f"logmel_constant_{i}"])[1:-1]
        worst("log-mel vs librosa>=0.10 (constant pad), interior frames", float(interior.max()))
        tf_tags = ref[f"tf_input_clip_{i}_tags"]
        with torch.no_grad():
            tags = model(musicnn_patches(log_mel))["tags"].numpy()
        worst("end to end, same waveform: tags", float(np.abs(tags - tf_tags).max()))
        if Path(str(path)).exists():
            samples = decode_audio(str(path), 16000).samples
            with torch.no_grad():
                tags = model.embed_waveform(samples)["tags"].numpy()
            n = min(len(tags), len(tf_tags))
            worst("end to end, decode_audio: tags", float(np.abs(tags[:n] - tf_tags[:n]).max()))

    versions = ", ".join(str(v) for v in ref["versions"])
    print(f"reference: {versions}; {len(ref['audio'])} clips; max abs difference:")
    for key, value in report.items():
        print(f"  {key}: {value:.2e}")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    ref = sub.add_parser("reference", help="in a TensorFlow venv: the original's outputs")
    ref.add_argument("--out", required=True, type=Path)
    ref.add_argument("audio", nargs="*", type=Path)
    cmp = sub.add_parser("compare", help="in the project venv: the port against them")
    cmp.add_argument("reference", type=Path)
    args = parser.parse_args(argv)
    if args.step == "reference":
        reference(args.out, args.audio)
    else:
        compare(args.reference)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
