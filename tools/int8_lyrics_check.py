"""Does the int8 lyrics encoder cost accuracy? Held-out, paired against float32 lyric vectors.

    python -m tools.int8_lyrics_check --data DIR [--checkpoint CKPT ...] [--cache DIR]

``lgfn evaluate`` reads lyric vectors from the feature cache, which the float32 encoder fills,
so it never sees the int8 path that ``precision: auto`` takes on CPUs without hardware bf16.
This embeds the held-out lyrics once more with the int8 encoder (under their own name in the
same cache, so the decoded audio is shared), then scores each model on the same clips with
either set of vectors (float32 model) and prints the paired comparison of ``lgfn compare``.
A developer measurement (docs/text-encoder.md), not a test.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

INT8_NAME_SUFFIX = "-int8"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="the training data root")
    parser.add_argument("--checkpoint", nargs="+", default=["default", "fast"])
    parser.add_argument("--cache", type=Path, help="feature cache (default ~/.cache/beets-lgfn)")
    parser.add_argument("--workers", type=int, default=2, help="audio decoding processes")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args(argv)

    import torch

    from lgfn_model.evaluation.compare import format_comparison
    from lgfn_model.evaluation.paired import correct_per_example, paired_comparison
    from lgfn_model.runtime.checkpoint import load_checkpoint
    from lgfn_model.text import load_text_encoder
    from lgfn_model.training.cache import FeatureCache
    from lgfn_model.training.datasets import load_examples
    from lgfn_model.training.splits import make_split
    from lgfn_model.training.train import load_items, predict_items

    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    split = make_split("heldout", load_examples(args.data))
    for checkpoint in args.checkpoint:
        model = load_checkpoint(checkpoint, device=cpu)
        model.set_compute_dtype(torch.float32)
        cache = FeatureCache(args.cache, sample_rate=model.config.audio.sample_rate)
        name = model.config.text_encoder
        int8_name = name + INT8_NAME_SUFFIX
        encoder = load_text_encoder(name, int8=True)

        def encode(lines: Sequence[str], encoder=encoder) -> np.ndarray:
            return encoder.encode(list(lines)).numpy()

        errors = cache.ensure_lyrics(
            [e.lyrics for e in split.test if e.lyrics], int8_name, encode=encode
        )
        if errors:
            print(f"{len(errors)} lyrics files failed to embed in int8: {next(iter(errors))}")
        outcomes = []
        for encoder_name in (name, int8_name):
            items = [
                item
                for item in load_items(split.test, cache, encoder_name, args.workers)
                if item.samples is not None
            ]
            out = predict_items(model, items, cpu)
            examples = [item.example for item in items]
            outcomes.append(
                correct_per_example(examples, out["probs"], out["p_valence"], out["p_arousal"])
            )
        report = {"a": f"{model.config.version}, lyrics float32", "b": "lyrics int8"}
        report["split"] = split.name
        for label in outcomes[0]:
            report[label] = paired_comparison(outcomes[0][label], outcomes[1][label], 10_000)
        print(format_comparison(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
