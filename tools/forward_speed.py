"""How long one model forward pass over a CPU batch takes, with and without heap tuning.

    python -m tools.forward_speed AUDIO... [--checkpoint musicnn] [--windows 32]
        [--threads 2] [--repeats 8] [--no-heap-tuning]

Decodes the files, cuts them in the model's windows (whole-track coverage, as the predictor
does), and times ``--repeats`` forward passes of the first ``--windows`` windows without
lyrics, after one warm-up pass, through the predictor's own model (batch norms folded,
``precision: auto``). ``--no-heap-tuning`` leaves glibc's malloc thresholds as they are
(lgfn_model/runtime/heap.py), for the comparison. Prints the fastest and the median pass and
one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("audio", nargs="+", help="audio files")
    parser.add_argument(
        "--checkpoint", help="checkpoint folder or a shipped model's name (default: the default)"
    )
    parser.add_argument("--windows", type=int, default=32, help="windows per pass (default 32)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--repeats", type=int, default=8, help="timed passes (default 8)")
    parser.add_argument("--no-heap-tuning", action="store_true", help="keep glibc's defaults")
    args = parser.parse_args(argv)

    if args.no_heap_tuning:
        import lgfn_model.runtime.heap as heap

        heap._done = False  # as if already tried: the predictor leaves malloc alone
    import torch

    from lgfn_model.data.audio import decode_audio
    from lgfn_model.data.windows import cut_windows
    from lgfn_model.runtime.predictor import Predictor

    torch.set_num_threads(args.threads)
    predictor = Predictor.load(args.checkpoint, device="cpu", workers=0)
    rate = predictor.config.audio.sample_rate
    windows, starts = [], []
    for path in args.audio:
        cut, first = cut_windows(decode_audio(path, rate).samples, predictor.config.audio)
        windows.append(cut)
        starts.append(first)
        if sum(len(w) for w in windows) >= args.windows:
            break
    batch = torch.from_numpy(np.concatenate(windows)[: args.windows])
    batch_starts = torch.from_numpy(np.concatenate(starts)[: args.windows])
    seconds = []
    with torch.inference_mode():
        predictor.model(batch, batch_starts, None)
        for _ in range(args.repeats):
            started = time.perf_counter()
            predictor.model(batch, batch_starts, None)
            seconds.append(time.perf_counter() - started)
    record = {
        "model": predictor.version,
        "precision": str(predictor.dtype).removeprefix("torch."),
        "windows": int(batch.shape[0]),
        "threads": args.threads,
        "heap_tuning": not args.no_heap_tuning,
        "fastest_ms": round(1000 * min(seconds), 1),
        "median_ms": round(1000 * statistics.median(seconds), 1),
    }
    print(
        f"{record['model']} ({record['precision']}), {record['windows']} windows, "
        f"{args.threads} thread(s), heap tuning {'on' if record['heap_tuning'] else 'off'}: "
        f"fastest {record['fastest_ms']} ms, median {record['median_ms']} ms per pass"
    )
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
