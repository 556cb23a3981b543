"""Port the MTG-Jamendo taggers of Won et al. 2020 to ``lgfn_model/weights/jamendo_*``.

    python -m tools.port_sota_taggers --source ../shared/pretrained/sota-music-tagging \\
        --out lgfn_model/weights [--fixture tests/fixtures/jamendo_reference.json]

``--source``: the folder with upstream's ``models/jamendo/{musicnn,fcn,crnn}/best_model.pth``
(torch state dicts, read once here with ``torch.load(..., weights_only=True)``),
``reference/`` (the upstream implementation, imported only here, with torchaudio) and
``LICENSE`` (MIT).

For each model it writes ``jamendo_<model>/model.safetensors`` (float32, the project's names),
``config.json`` (tags, architecture, input, sha256 of source and weights, licence) and
``LICENSE.md``; then it runs upstream's classes and the port on the same deterministic
synthetic input (:func:`synthetic_input`), prints their largest difference, and stores
upstream's outputs as the test fixture. Not needed at run time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lgfn_model.pretrained.jamendo import (
    CONFIG_FILE,
    CRNN_INPUT_LENGTH,
    FCN_INPUT_LENGTH,
    HOP_LENGTH,
    JAMENDO_TAGS,
    MUSICNN_INPUT_LENGTH,
    N_FFT,
    SAMPLE_RATE,
    WEIGHTS_FILE,
    JamendoCRNN,
    JamendoFCN,
    JamendoMusicnn,
    load_jamendo_tagger,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FIXTURE = ROOT / "tests" / "fixtures" / "jamendo_reference.json"
BATCH = 2
SEED = 20201

ATTRIBUTION = (
    "Weights of the MTG-Jamendo {name} tagger from Minz Won, Andres Ferraro, Dmitry Bogdanov "
    "and Xavier Serra, 'Evaluation of CNN-based automatic music tagging models', Sound and "
    "Music Computing (SMC) 2020 (https://github.com/minzwon/sota-music-tagging), Music "
    "Technology Group, Universitat Pompeu Fabra; MIT licence. Converted from the PyTorch state "
    "dict to safetensors unchanged (float32), with the parameters renamed for beets-lgfn's own "
    "modules."
)
DISPLAY = {"musicnn": "musicnn", "fcn": "FCN-5", "crnn": "CRNN"}
ARCH = {"musicnn": {"backend_channels": 64, "embedding": "dense 200 -> batch norm -> ReLU"}}
ARCH["fcn"] = {"embedding": "last conv block's output, 64 x 1 x 1 flattened"}
ARCH["crnn"] = {"embedding": "2-layer GRU's 32-d output at the last time step"}
CLASSES = {"musicnn": JamendoMusicnn, "fcn": JamendoFCN, "crnn": JamendoCRNN}
LENGTHS = {"musicnn": MUSICNN_INPUT_LENGTH, "fcn": FCN_INPUT_LENGTH, "crnn": CRNN_INPUT_LENGTH}


# --------------------------------------------------------------------------- the input


def synthetic_input(samples: int, batch: int = BATCH, seed: int = SEED) -> np.ndarray:
    """``(batch, samples)`` float32 at 16 kHz: sines (a chord with a swelling partial, a
    different one per row) plus noise from a counter-based hash (murmur3's 64-bit finaliser),
    so it is the same on every machine and numpy version, unlike a seeded generator."""
    n = np.arange(samples, dtype=np.uint64)
    t = np.arange(samples, dtype=np.float64) / SAMPLE_RATE
    rows = []
    for row in range(batch):
        x = n + np.uint64(seed + row * samples)
        x = x * np.uint64(0x9E3779B97F4A7C15)
        x ^= x >> np.uint64(33)
        x = x * np.uint64(0xFF51AFD7ED558CCD)
        x ^= x >> np.uint64(33)
        x = x * np.uint64(0xC4CEB9FE1A85EC53)
        x ^= x >> np.uint64(33)
        noise = (x >> np.uint64(11)).astype(np.float64) / 2.0**53 * 2.0 - 1.0
        base = 110.0 * (row + 2)
        swell = 0.5 + 0.5 * np.sin(2 * np.pi * (0.5 + row) * t)
        wave = (
            0.30 * np.sin(2 * np.pi * base * t)
            + 0.20 * np.sin(2 * np.pi * 1.5 * base * t)
            + 0.15 * swell * np.sin(2 * np.pi * 4.0 * base * t)
            + 0.05 * np.sin(2 * np.pi * 3100.0 * t)
            + 0.05 * noise
        )
        rows.append(wave)
    return np.stack(rows).astype(np.float32)


# --------------------------------------------------------------------------- names


def convert(name: str, upstream: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Upstream's state dict -> the port's; every entry is used once (the STFT window is checked
    to be ``torch.hann_window``, which the port recomputes)."""
    renames = {"spec.mel_scale.fb": "front.mel_fb", "spec_bn.": "front.bn."}
    if name == "musicnn":
        renames |= {f"layers.{i}.": f"timbral.{i}." for i in (0, 1)}
        renames |= {f"layers.{i}.": f"temporal.{i - 2}." for i in (2, 3, 4)}
        renames |= {f"layer{i}.": f"midend.{i - 1}." for i in (1, 2, 3)}
        renames |= {"dense1.": "dense.", "bn.": "dense_bn.", "dense2.": "classifier."}
    elif name == "fcn":
        renames |= {f"layer{i}.": f"blocks.{i - 1}." for i in range(1, 6)}
        renames |= {"dense.": "classifier."}
    else:
        renames |= {f"layer{i}.": f"blocks.{i - 1}." for i in range(1, 5)}
        renames |= {"layer5.": "gru.", "dense.": "classifier."}
    window = upstream["spec.spectrogram.window"]
    if not torch.equal(window, torch.hann_window(N_FFT)):
        raise ValueError("upstream's STFT window is not torch.hann_window(512)")
    state: dict[str, torch.Tensor] = {}
    for key, value in upstream.items():
        if key == "spec.spectrogram.window":
            continue
        prefix = next((p for p in renames if key.startswith(p)), None)
        if prefix is None:
            raise ValueError(f"{name}: upstream entry {key} is not mapped")
        ours = renames[prefix] + key[len(prefix) :]
        if ours in state:
            raise ValueError(f"{name}: two upstream entries map to {ours}")
        state[ours] = value.to(torch.float32) if value.is_floating_point() else value
    return state


# --------------------------------------------------------------------------- upstream


@contextmanager
def _reference_on_path(source: Path):
    """Upstream's ``model.py`` imports its siblings as top-level modules."""
    folder = str(source / "reference")
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        sys.path.remove(folder)
        for module in ("model", "modules", "attention_modules"):
            sys.modules.pop(module, None)


def upstream_outputs(
    source: Path, name: str, state: dict[str, torch.Tensor], wave: torch.Tensor
) -> dict[str, Any]:
    """Upstream's own classes on ``wave``: tags, the last dense layer's input (the embedding),
    and how far the tags move when its filterbank is recomputed by today's torchaudio, as
    upstream does on load."""
    import torchaudio

    with _reference_on_path(source):
        import model as reference  # upstream's model.py, only here

        if name == "musicnn":
            net = reference.Musicnn(dataset="jamendo")
        else:
            net = getattr(reference, name.upper())()  # FCN(), CRNN(): 96 bands by default
        net.load_state_dict(state, strict=True)
        net.eval()
        last = net.dense2 if name == "musicnn" else net.dense
        seen: list[torch.Tensor] = []
        hook = last.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
        with torch.no_grad():
            tags = net(wave)
        hook.remove()
        saved_fb = net.spec.mel_scale.fb.clone()
        fresh = torchaudio.transforms.MelSpectrogram(
            sample_rate=SAMPLE_RATE, n_fft=N_FFT, f_min=0.0, f_max=8000.0, n_mels=saved_fb.shape[1]
        ).mel_scale.fb
        net.spec.mel_scale.fb.copy_(fresh)
        with torch.no_grad():
            tags_fresh = net(wave)
    return {
        "tags": tags,
        "embedding": seen[0],
        "filterbank": {
            "used": "saved with the weights (spec.mel_scale.fb)",
            "shape": list(saved_fb.shape),
            "equal_to_fresh_torchaudio": bool(torch.equal(saved_fb, fresh)),
            "max_abs_diff_to_fresh_torchaudio": float((saved_fb - fresh).abs().max()),
            "fresh_torchaudio_version": torchaudio.__version__,
            "tags_max_abs_diff_with_fresh_on_synthetic_input": float(
                (tags - tags_fresh).abs().max()
            ),
        },
    }


# --------------------------------------------------------------------------- writing


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rounded(t: torch.Tensor) -> list[list[float]]:
    return [[float(f"{v:.9g}") for v in row] for row in t.tolist()]


def port_one(source: Path, name: str, out: Path, license_text: str) -> dict[str, Any]:
    pth = source / "models" / "jamendo" / name / "best_model.pth"
    upstream = torch.load(pth, map_location="cpu", weights_only=True)
    state = convert(name, upstream)
    n_mels = state["front.mel_fb"].shape[1]
    ours = CLASSES[name](n_mels=n_mels)
    ours.load_state_dict(state, strict=True)  # names and shapes must match exactly

    length = LENGTHS[name]
    wave = torch.from_numpy(synthetic_input(length))
    reference = upstream_outputs(source, name, upstream, wave)

    from safetensors.torch import save_file

    folder = out / f"jamendo_{name}"
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / WEIGHTS_FILE
    save_file(
        {k: v.contiguous() for k, v in state.items()},
        str(weights),
        # One metadata entry: safetensors writes a map's entries in a per-process hash order,
        # so two would make the file (and its sha256) differ from run to run.
        metadata={"source": f"sota-music-tagging models/jamendo/{name} (MIT, see LICENSE.md)"},
    )
    attribution = ATTRIBUTION.format(name=DISPLAY[name])
    config = {
        "model": f"jamendo_{name}",
        "tags": list(JAMENDO_TAGS),
        "architecture": {"kind": name, "n_mels": n_mels, **ARCH[name]},
        "embedding_dim": ours.embedding_dim,
        "input": {
            "sample_rate": SAMPLE_RATE,
            "input_length": length,
            "seconds": length / SAMPLE_RATE,
            "n_fft": N_FFT,
            "hop_length": HOP_LENGTH,
            "n_mels": n_mels,
            "front_end": "power STFT (periodic Hann, centred, reflect) -> saved mel filterbank "
            "(0-8000 Hz) -> 10*log10(max(x, 1e-10)) -> BatchNorm2d(1)",
        },
        "filterbank": reference["filterbank"],
        "parameters": int(sum(p.numel() for p in ours.parameters())),
        "weights_sha256": _sha256(weights),
        "source": {
            "file": f"models/jamendo/{name}/best_model.pth",
            "sha256": _sha256(pth),
            "url": "https://github.com/minzwon/sota-music-tagging",
        },
        "license": "MIT",
        "attribution": attribution,
        "license_text": license_text,
    }
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (folder / "LICENSE.md").write_text(
        f"# MTG-Jamendo {DISPLAY[name]} tagger: licence (MIT)\n\n{attribution}\n\n{license_text}",
        encoding="utf-8",
    )

    port = load_jamendo_tagger(name, path=folder)
    with torch.no_grad():
        got = port(wave)
    diffs = {key: float((got[key] - reference[key]).abs().max()) for key in ("tags", "embedding")}
    print(
        f"{name}: {weights} {weights.stat().st_size / 1e6:.2f} MB, {config['parameters']:,}"
        f" parameters; port vs upstream max abs diff: tags {diffs['tags']:.3g},"
        f" embedding {diffs['embedding']:.3g}; filterbank {reference['filterbank']}"
    )
    return {
        "input": {"samples": length, "batch": BATCH, "seed": SEED},
        "tags": _rounded(reference["tags"]),
        "embedding": _rounded(reference["embedding"]),
    }


def port(source: Path, out: Path, fixture: Path) -> None:
    license_text = (source / "LICENSE").read_text(encoding="utf-8")
    cases = {name: port_one(source, name, out, license_text) for name in CLASSES}
    fixture.parent.mkdir(parents=True, exist_ok=True)
    note = (
        "Outputs of upstream's reference classes (sota-music-tagging reference/model.py, "
        "torchaudio front end, saved filterbank) on tools.port_sota_taggers.synthetic_input; "
        "written by python -m tools.port_sota_taggers."
    )
    fixture.write_text(json.dumps({"note": note, **cases}) + "\n", encoding="utf-8")
    print(f"wrote {fixture} ({fixture.stat().st_size / 1e3:.1f} kB)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", required=True, type=Path, help="sota-music-tagging folder")
    parser.add_argument("--out", default=ROOT / "lgfn_model" / "weights", type=Path)
    parser.add_argument("--fixture", default=DEFAULT_FIXTURE, type=Path)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    port(args.source, args.out, args.fixture)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
