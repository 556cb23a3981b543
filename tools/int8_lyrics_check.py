"""Does the int8 lyrics encoder cost accuracy? Held-out, paired against the float32 encoder.

    python -m tools.int8_lyrics_check --data DIR [--checkpoint CKPT ...] [--cache DIR]

``precision: auto`` runs the lyrics encoder with int8 Linear layers on CPUs without hardware
bf16. ``lgfn evaluate --precision auto`` measures exactly that on such a CPU; this measures it
on any CPU: each model (float32) predicts the held-out clips through the Predictor twice, with
the float32 lyrics encoder and with the int8 one, and the paired comparison of
``lgfn compare`` is printed. A developer measurement (docs/text-encoder.md), not a test.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="the training data root")
    parser.add_argument("--checkpoint", nargs="+", default=["default", "musicnn"])
    parser.add_argument("--cache", type=Path, help="feature cache (default ~/.cache/beets-lgfn)")
    parser.add_argument("--workers", type=int, default=2, help="audio decoding processes")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args(argv)

    import torch

    from lgfn_model.evaluation.compare import format_comparison
    from lgfn_model.evaluation.paired import correct_per_example, paired_comparison
    from lgfn_model.evaluation.predicting import load_clips, predict_examples
    from lgfn_model.runtime.checkpoint import load_checkpoint
    from lgfn_model.runtime.predictor import Predictor
    from lgfn_model.text import load_text_encoder
    from lgfn_model.training.cache import FeatureCache
    from lgfn_model.training.datasets import load_examples
    from lgfn_model.training.splits import make_split

    cpu = torch.device("cpu")
    split = make_split("heldout", load_examples(args.data))
    for checkpoint in args.checkpoint:
        outcomes, version = [], ""
        for int8 in (False, True):
            model = load_checkpoint(checkpoint)
            encoder = load_text_encoder(model.config.text_encoder, int8=int8)
            predictor = Predictor(
                model, cpu, workers=0, text_encoder=encoder, precision="fp32", threads=args.threads
            )
            version = predictor.version
            cache = FeatureCache(args.cache, sample_rate=predictor.config.audio.sample_rate)
            clips = [c for c in load_clips(split.test, cache, args.workers) if c.has_audio]
            out = predict_examples(predictor, clips, cache)
            examples = [c.example for c in clips]
            outcomes.append(
                correct_per_example(examples, out["probs"], out["p_valence"], out["p_arousal"])
            )
        report = {"a": f"{version}, lyrics float32", "b": "lyrics int8"}
        report["split"] = split.name
        for label in outcomes[0]:
            report[label] = paired_comparison(outcomes[0][label], outcomes[1][label], 10_000)
        print(format_comparison(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
