"""How fast musicnn's three inference paths are, and how far apart their outputs lie.

    python -m tools.musicnn_speed AUDIO... [--threads 1] [--chunk 3]

Decodes each file at 16 kHz, cuts it into musicnn's 3 s patches and runs them (``--chunk`` at a
time, as ``PretrainedTagger`` does) through:

- ``literal``: conv -> ReLU -> batch norm -> max over bands, as musicnn orders it (the training
  path, forced here with autograd on);
- ``fp32``: the eval path, max over bands first, float32 (an exact reordering);
- ``bf16``: the eval path with the front-end convolutions in bfloat16.

Prints milliseconds per patch and the largest absolute difference of ``penultimate``,
``logits`` and ``tags`` against the literal path, as a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from lgfn_model.data.audio import decode_audio
from lgfn_model.pretrained.musicnn import (
    SAMPLE_RATE,
    load_musicnn_msd,
    musicnn_log_mel,
    musicnn_patches,
)

OUTPUTS = ("penultimate", "logits", "tags")


def run_path(model, patches: torch.Tensor, chunk: int, literal: bool) -> tuple[dict, float]:
    """Outputs for all patches and the seconds it took."""
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in OUTPUTS}
    started = time.perf_counter()
    for part in patches.split(chunk):
        if literal:
            with torch.enable_grad():
                out = model(part)
        else:
            with torch.inference_mode():
                out = model(part)
        for name in OUTPUTS:
            parts[name].append(out[name].detach())
    seconds = time.perf_counter() - started
    return {name: torch.cat(values) for name, values in parts.items()}, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("audio", nargs="+", help="audio files")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--chunk", type=int, default=3, help="patches per forward pass")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    model = load_musicnn_msd()
    log_mels = [
        musicnn_log_mel(torch.from_numpy(decode_audio(Path(p), SAMPLE_RATE).samples))
        for p in args.audio
    ]
    patches = torch.cat([musicnn_patches(m) for m in log_mels])
    run_path(model, patches[: args.chunk], args.chunk, literal=False)  # warm-up

    record: dict[str, object] = {"patches": len(patches), "threads": args.threads}
    reference, seconds = run_path(model, patches, args.chunk, literal=True)
    record["literal_ms_per_patch"] = round(1000 * seconds / len(patches), 2)
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        model.set_compute_dtype(dtype)
        run_path(model, patches[: args.chunk], args.chunk, literal=False)
        outputs, seconds = run_path(model, patches, args.chunk, literal=False)
        record[f"{name}_ms_per_patch"] = round(1000 * seconds / len(patches), 2)
        for output in OUTPUTS:
            difference = (outputs[output] - reference[output]).abs().max().item()
            record[f"{name}_max_abs_diff_{output}"] = float(f"{difference:.3g}")
    model.set_compute_dtype(torch.float32)

    print(f"{record['patches']} patches of 3 s, {args.threads} thread(s), chunks of {args.chunk}")
    for name in ("literal", "fp32", "bf16"):
        line = f"{name:<8} {record[f'{name}_ms_per_patch']:>7.2f} ms/patch"
        if name != "literal":
            diffs = ", ".join(f"{o} {record[f'{name}_max_abs_diff_{o}']:.2g}" for o in OUTPUTS)
            line += f"   max |diff| vs literal: {diffs}"
        print(line)
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
