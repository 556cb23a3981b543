"""Port musicnn's ``MSD_musicnn`` TF1 checkpoint to ``lgfn_model/weights/musicnn_msd/``.

    pip install --no-deps musicnn==0.1.0   # the checkpoint; its TF/numpy pins are not needed
    python -m tools.port_musicnn [--checkpoint PATH] [--out DIR]

``--checkpoint``: the checkpoint prefix or musicnn's model folder (default: the installed
package's ``MSD_musicnn/``, whose files are the hidden ``.index`` / ``.data-00000-of-00001``).
The checkpoint is read without TensorFlow (:mod:`tools.tf_bundle`); Adam slots and
the step counters are dropped, the 792,081 model parameters are kept in float32.
Writes ``model.safetensors``, ``config.json`` (tags, architecture, source, sha256s, licence)
and ``LICENSE.md`` (musicnn's ISC licence). Not needed at run time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from lgfn_model.pretrained.musicnn import (
    BN_EPS,
    CONFIG_FILE,
    HOP_LENGTH,
    MSD_TAGS,
    N_FFT,
    N_FRAMES,
    N_MELS,
    SAMPLE_RATE,
    WEIGHTS_FILE,
    MusicnnMSD,
)
from tools.tf_bundle import TFCheckpointReader

MUSICNN_VERSION = "0.1.0"

MUSICNN_LICENSE = """\
Copyright (c) Music Technology Group, Universitat Pompeu Fabra 2019. Code developed by Jordi Pons (www.jordipons.me).

Permission to use, copy, modify, and/or distribute this software for any purpose with or without fee is hereby granted, provided that the above copyright notice and this permission notice appear in all copies.

THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.
"""  # noqa: E501  (verbatim from musicnn-0.1.0.dist-info/LICENSE.md)

ATTRIBUTION = (
    "Weights of MSD_musicnn from musicnn 0.1.0 (https://github.com/jordipons/musicnn, PyPI "
    "'musicnn'), by Jordi Pons and Xavier Serra, Music Technology Group, Universitat Pompeu "
    "Fabra; ISC licence. Converted to PyTorch/safetensors unchanged (float32). Paper: J. Pons, "
    "X. Serra, 'musicnn: pre-trained convolutional neural networks for music audio tagging', "
    "ISMIR 2019 late-breaking/demo."
)

# TF1 layer names (creation order in musicnn/models.py::build_musicnn) -> our modules.
CONV_LAYERS = {
    "conv2d": "timbral.0.conv",  # 7x38 timbral
    "conv2d_1": "timbral.1.conv",  # 7x67 timbral
    "conv2d_2": "temporal.0.conv",  # 128x1 temporal
    "conv2d_3": "temporal.1.conv",  # 64x1
    "conv2d_4": "temporal.2.conv",  # 32x1
    "conv2d_5": "midend.0.conv",
    "conv2d_6": "midend.1.conv",
    "conv2d_7": "midend.2.conv",
}
BN_LAYERS = {
    "batch_normalization": "input_bn",
    "batch_normalization_1": "timbral.0.bn",
    "batch_normalization_2": "timbral.1.bn",
    "batch_normalization_3": "temporal.0.bn",
    "batch_normalization_4": "temporal.1.bn",
    "batch_normalization_5": "temporal.2.bn",
    "batch_normalization_6": "midend.0.bn",
    "batch_normalization_7": "midend.1.bn",
    "batch_normalization_8": "midend.2.bn",
    "batch_normalization_9": "pool_bn",
    "batch_normalization_10": "dense_bn",
}
DENSE_LAYERS = {"dense": "dense", "dense_1": "classifier"}
BN_PARAMS = {
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}


def default_checkpoint() -> str:
    import musicnn  # only the package's files are used, never its TensorFlow code

    return str(Path(musicnn.__file__).parent / "MSD_musicnn") + "/"


def checkpoint_prefix(path: str | Path) -> str:
    path = str(path)
    if Path(path).is_dir():
        return path.rstrip("/") + "/"
    for suffix in (".index", ".data-00000-of-00001"):
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path


def _is_model_variable(name: str) -> bool:
    return "Adam" not in name and name not in ("beta1_power", "beta2_power", "global_step")


def convert(reader: TFCheckpointReader) -> dict[str, torch.Tensor]:
    """TF variables -> ``MusicnnMSD`` state dict (float32); every model variable is used once."""
    tf = {name: reader.tensor(name) for name in reader.names() if _is_model_variable(name)}
    used: set[str] = set()

    def take(name: str) -> np.ndarray:
        used.add(name)
        return tf[name]

    state: dict[str, torch.Tensor] = {}
    for tf_name, ours in CONV_LAYERS.items():
        kernel = take(f"{tf_name}/kernel")  # (kh, kw, in, out)
        if ours.startswith("midend"):
            # (7, C_in, 1, out): a "2-D" conv whose width spans all channels = Conv1d over time
            weight = kernel[:, :, 0, :].transpose(2, 1, 0)  # (out, C_in, 7)
        else:
            weight = kernel.transpose(3, 2, 0, 1)  # (out, in, kh, kw)
        state[f"{ours}.weight"] = torch.from_numpy(np.ascontiguousarray(weight))
        state[f"{ours}.bias"] = torch.from_numpy(take(f"{tf_name}/bias"))
    for tf_name, ours in BN_LAYERS.items():
        for tf_param, param in BN_PARAMS.items():
            state[f"{ours}.{param}"] = torch.from_numpy(take(f"{tf_name}/{tf_param}"))
        state[f"{ours}.num_batches_tracked"] = torch.tensor(0, dtype=torch.int64)
    for tf_name, ours in DENSE_LAYERS.items():
        state[f"{ours}.weight"] = torch.from_numpy(
            np.ascontiguousarray(take(f"{tf_name}/kernel").T)
        )
        state[f"{ours}.bias"] = torch.from_numpy(take(f"{tf_name}/bias"))
    unused = sorted(set(tf) - used)
    if unused:
        raise ValueError(f"checkpoint variables not mapped: {unused}")
    return {k: v.to(torch.float32) if v.is_floating_point() else v for k, v in state.items()}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def port(checkpoint: str | Path, out: str | Path) -> Path:
    prefix = checkpoint_prefix(checkpoint)
    reader = TFCheckpointReader(prefix, verify=True)
    state = convert(reader)

    model = MusicnnMSD()
    model.load_state_dict(state, strict=True)  # shapes and names must match exactly

    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / WEIGHTS_FILE
    save_file(
        {k: v.contiguous() for k, v in state.items()},
        str(weights),
        metadata={"source": "musicnn 0.1.0 MSD_musicnn", "license": "ISC"},
    )
    source_files = {
        Path(p).name: _sha256(Path(p)) for p in (prefix + ".index", prefix + ".data-00000-of-00001")
    }
    config = {
        "model": "MSD_musicnn",
        "tags": list(MSD_TAGS),
        "architecture": {
            "n_mels": N_MELS,
            "frontend_scale": 1.6,
            "midend_filters": 64,
            "backend_units": 200,
            "batch_norm_eps": BN_EPS,
        },
        "input": {
            "sample_rate": SAMPLE_RATE,
            "n_fft": N_FFT,
            "hop_length": HOP_LENGTH,
            "n_mels": N_MELS,
            "mel": "librosa defaults: slaney scale, slaney norm, 0-8000 Hz",
            "log": "log10(10000 * mel + 1), mel rounded to float16 first",
            "patch_frames": N_FRAMES,
        },
        "parameters": int(sum(v.numel() for k, v in state.items() if v.is_floating_point())),
        "weights_sha256": _sha256(weights),
        "source": {
            "package": f"musicnn=={MUSICNN_VERSION}",
            "checkpoint": "musicnn/MSD_musicnn/ (TF1 TensorBundle)",
            "sha256": source_files,
            "url": "https://github.com/jordipons/musicnn",
            "reported_test_roc_auc": 0.8801927178090048,
        },
        "license": "ISC",
        "attribution": ATTRIBUTION,
        "license_text": MUSICNN_LICENSE,
    }
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (out / "LICENSE.md").write_text(
        "# musicnn licence (ISC)\n\n" + ATTRIBUTION + "\n\n" + MUSICNN_LICENSE, encoding="utf-8"
    )
    return weights


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="checkpoint prefix or musicnn model folder")
    parser.add_argument(
        "--out",
        default=str(Path(__file__).resolve().parents[1] / "weights" / "musicnn_msd"),
        help="output folder (default: lgfn_model/weights/musicnn_msd)",
    )
    args = parser.parse_args(argv)
    checkpoint = args.checkpoint or default_checkpoint()
    weights = port(checkpoint, args.out)
    print(f"wrote {weights} ({weights.stat().st_size / 1e6:.2f} MB) from {checkpoint}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
