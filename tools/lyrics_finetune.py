"""Does a lightly fine-tuned lyrics encoder know more about mood? Out-of-fold, on the CPU.

    python -m tools.lyrics_finetune --data ../shared/data --folds-from runs/crossval-default \\
        --out runs/lyrics-top1 --top 1 --lr 3e-5 --only 1 2
    python -m tools.lyrics_finetune --data ../shared/data --folds-from runs/crossval-default \\
        --out runs/lyrics-frozen --top 1 --lr 0 --only 1 2          # the control: encoder frozen
    python -m tools.crossval_stack --data ../shared/data --base runs/crossval-default \\
        --probe-run runs/lyrics-top1 --out runs/stack-lyrics-top1

A lyrics-only model per fold of ``--folds-from`` (a `lgfn crossval` run: its test examples
define the folds), trained on every development lyrics file outside the fold's test examples
(NJU, MoodyLyrics4Q, the MIREX-like clips' lyrics) and predicting the fold's test lyrics. The
model is the encoder LGFN reads (multilingual-e5-small) with its top ``--top`` transformer
layers trained at ``--lr`` (0: frozen), each line mean-pooled over its tokens and
L2-normalised as the encoder does, the lines averaged, then batch norm, dropout and one linear
layer to the four moods and the signs of valence and arousal (cross-entropy on the labels each
file has). The layers below are run once, in bf16, and their output is kept in memory (about
0.8 GB for the 80,000 distinct lines), which is what makes this affordable on 2 cores.

``--whole-text`` reads each file's whole text instead of its lines: the lines joined and cut
into the encoder's windows of at most 512 tokens (as a ``song_text`` model and the lyrics
read-out read it), each window mean-pooled and normalised, the windows averaged; the states
below are then about 1.2 GB. ``--weight DATASET=W`` weighs that dataset's files in the loss
(the read-out weighs NJU and MoodyLyrics4Q 0.1).

``OUT/fold-<i>.json`` holds the predictions in the form of a `lgfn crossval` fold, so
`tools.crossval_stack --probe-run` fuses them with a recipe and `--lr 0` gives the control
from the same code. Figures and times: docs/text-encoder.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lgfn_model.evaluation.crossval_compare import fold_results
from lgfn_model.training.datasets import MOODS, Example

log = logging.getLogger("lyrics_finetune")
MAX_LINES = 128  # lines read per file
TRAIN_LINES = 48  # lines drawn per file and step in training
BATCH_FILES = 16
BELOW_BATCH = 32  # units a pass below; windows are up to 512 tokens


@dataclass
class LineStates:
    """Every distinct line's hidden states at the input of the trainable layers."""

    flat: np.ndarray  # (tokens, dim) float16
    offsets: np.ndarray  # (lines + 1,)

    def batch(self, lines: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = self.offsets[lines + 1] - self.offsets[lines]
        states = torch.zeros(len(lines), int(lengths.max()), self.flat.shape[1])
        mask = torch.zeros(len(lines), int(lengths.max()))
        for row, (line, length) in enumerate(zip(lines, lengths, strict=True)):
            part = self.flat[self.offsets[line] : self.offsets[line + 1]]
            states[row, :length] = torch.from_numpy(part.astype(np.float32))
            mask[row, :length] = 1
        return states, mask


def encode_below(
    encoder: Any, ids: list[list[int]], top: int
) -> tuple[LineStates, list[nn.Module]]:
    """The frozen part's output for every unit (a line's or a window's token ids, special
    tokens included), and copies of the ``top`` layers above it."""
    bert = encoder.model.float().eval()
    layers = bert.encoder.layer
    if not 1 <= top <= len(layers):
        raise ValueError(f"--top must be 1..{len(layers)}")
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    states: list[np.ndarray] = [np.empty(0)] * len(ids)
    started = time.perf_counter()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        for begin in range(0, len(order), BELOW_BATCH):
            chunk = order[begin : begin + BELOW_BATCH]
            width = max(len(ids[i]) for i in chunk)
            tokens = torch.full((len(chunk), width), encoder.pad_id, dtype=torch.long)
            mask = torch.zeros_like(tokens)
            for row, index in enumerate(chunk):
                tokens[row, : len(ids[index])] = torch.tensor(ids[index])
                mask[row, : len(ids[index])] = 1
            out = bert(input_ids=tokens, attention_mask=mask, output_hidden_states=True)
            below = out.hidden_states[len(layers) - top]
            for row, index in enumerate(chunk):
                states[index] = below[row, : len(ids[index])].to(torch.float16).numpy()
    lengths = np.array([len(s) for s in states])
    log.info(
        "%d units below the top %d layer(s) in %.0f s",
        len(ids),
        top,
        time.perf_counter() - started,
    )
    trainable = [copy.deepcopy(layer).float() for layer in layers[len(layers) - top :]]
    return LineStates(np.concatenate(states), np.concatenate([[0], np.cumsum(lengths)])), trainable


class LyricsModel(nn.Module):
    def __init__(self, layers: list[nn.Module], dim: int, train_layers: bool):
        super().__init__()
        self.layers = nn.ModuleList(copy.deepcopy(layers))
        self.layers.requires_grad_(train_layers)
        self.head = nn.Sequential(
            nn.BatchNorm1d(dim), nn.Dropout(0.1), nn.Linear(dim, len(MOODS) + 2)
        )

    def forward(self, states: LineStates, files: list[list[int]]) -> torch.Tensor:
        unique = list(dict.fromkeys(line for lines in files for line in lines))
        where = {line: k for k, line in enumerate(unique)}
        x, mask = states.batch(np.array(unique))
        extended = (1.0 - mask[:, None, None, :]) * -1e9
        for layer in self.layers:
            x = layer(x, attention_mask=extended)
            x = x[0] if isinstance(x, tuple) else x
        pooled = F.normalize((x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True), dim=-1)
        documents = torch.stack(
            [pooled[[where[line] for line in lines]].mean(0) for lines in files]
        )
        return self.head(documents)


def _sign(value: float | None) -> float | None:
    return None if value is None or value == 0 else float(value > 0)


def _weighted_mean(each: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    # Divided by the weights' sum, not the count as `lgfn train` divides (weighted_mean in
    # lgfn_model.training.dataset_weighting): a batch of lyrics-only files keeps full scale
    # here. The figures in docs/text-encoder.md were measured so.
    return (each * weights).sum() / weights.sum().clamp_min(1e-12)


def loss_of(
    out: torch.Tensor, examples: list[Example], dataset_weights: dict[str, float] | None = None
) -> torch.Tensor:
    """Cross-entropy on the labels each file has, each file weighed by its dataset's weight."""
    weights = torch.tensor([(dataset_weights or {}).get(e.dataset, 1.0) for e in examples])
    loss = out.new_zeros(())
    moods = [k for k, e in enumerate(examples) if e.mood is not None]
    if moods:
        target = torch.tensor([examples[k].mood for k in moods])
        each = F.cross_entropy(out[moods, : len(MOODS)], target, reduction="none")
        loss = loss + _weighted_mean(each, weights[moods])
    for column, name in ((len(MOODS), "valence"), (len(MOODS) + 1, "arousal")):
        signs = [_sign(getattr(e, name)) for e in examples]
        keep = [k for k, s in enumerate(signs) if s is not None]
        if keep:
            target = torch.tensor([signs[k] for k in keep])
            each = F.binary_cross_entropy_with_logits(out[keep, column], target, reduction="none")
            loss = loss + _weighted_mean(each, weights[keep])
    return loss


def run_fold(
    fold: int,
    train: list[Example],
    test: list[Example],
    lines_of: dict[str, list[int]],
    states: LineStates,
    layers: list[nn.Module],
    epochs: int,
    lr: float,
    dataset_weights: dict[str, float] | None = None,
) -> dict[str, list]:
    torch.manual_seed(fold)
    rng = np.random.default_rng(fold)
    model = LyricsModel(layers, states.flat.shape[1], train_layers=lr > 0)
    groups = [{"params": model.head.parameters(), "lr": 3e-3}]
    if lr > 0:
        groups.append({"params": model.layers.parameters(), "lr": lr})
    optimiser = torch.optim.AdamW(groups, weight_decay=0.05)
    started = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(len(train))
        total = 0.0
        for begin in range(0, len(order), BATCH_FILES):
            batch = [train[k] for k in order[begin : begin + BATCH_FILES]]
            if len(batch) < 2:  # batch norm cannot train on one file: it waits a shuffle
                continue
            files = []
            for example in batch:
                lines = lines_of[example.id]
                if len(lines) > TRAIN_LINES:
                    lines = list(rng.choice(lines, TRAIN_LINES, replace=False))
                files.append(lines)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = model(states, files).float()
            loss = loss_of(out, batch, dataset_weights)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach())
        steps = -(-len(order) // BATCH_FILES)
        log.info(
            "fold %d epoch %d: loss %.3f (%.0f s)",
            fold,
            epoch + 1,
            total / steps,
            time.perf_counter() - started,
        )
    model.eval()
    probs: list[list[float]] = []
    valence: list[float] = []
    arousal: list[float] = []
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        for begin in range(0, len(test), 32):
            out = model(states, [lines_of[e.id] for e in test[begin : begin + 32]]).float()
            probs += F.softmax(out[:, : len(MOODS)], dim=-1).tolist()
            valence += torch.sigmoid(out[:, len(MOODS)]).tolist()
            arousal += torch.sigmoid(out[:, len(MOODS) + 1]).tolist()
    return {"id": [e.id for e in test], "probs": probs, "p_valence": valence, "p_arousal": arousal}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.lyrics_finetune", description=__doc__)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument(
        "--folds-from", required=True, type=Path, help="a lgfn crossval --out folder"
    )
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--top", type=int, default=1, help="transformer layers trained (1)")
    parser.add_argument("--lr", type=float, default=3e-5, help="their learning rate; 0: frozen")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--only", type=int, nargs="+", default=None, help="these folds only")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--whole-text", action="store_true", help="read each file's whole text, not its lines"
    )
    parser.add_argument(
        "--weight",
        action="append",
        default=[],
        metavar="DATASET=W",
        help="weigh DATASET's files by W in the loss (default 1), e.g. nju=0.1; repeatable",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)

    from lgfn_model.data.lyrics import read_lyrics_file
    from lgfn_model.training.crossval import development_examples

    try:
        folds = {
            name: document["predictions"]["clean"]["id"]
            for name, document in fold_results(args.folds_from).items()
            if name.startswith("fold-")
        }
    except (ValueError, KeyError) as error:
        print(f"error: {args.folds_from}: {error}", file=sys.stderr)
        return 1
    chosen = {f"fold-{k}" for k in args.only} if args.only else set(folds)
    unknown = sorted(chosen - set(folds))
    if unknown:
        print(f"error: {args.folds_from} has no {', '.join(unknown)}", file=sys.stderr)
        return 1
    from lgfn_model.text import load_text_encoder
    from tools.crossval_stack import parse_dataset_weights

    every = development_examples(args.data)
    try:
        dataset_weights = parse_dataset_weights(args.weight, every)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    examples = {e.id: e for e in every if e.lyrics is not None}
    parsed = {i: read_lyrics_file(str(e.lyrics)) for i, e in examples.items()}
    if args.whole_text:
        texts = {i: [lyrics.whole_text] for i, lyrics in parsed.items()}
    else:
        texts = {i: lyrics.texts[:MAX_LINES] for i, lyrics in parsed.items()}
    texts = {i: units for i, units in texts.items() if any(u.strip() for u in units)}
    distinct = list(dict.fromkeys(unit for units in texts.values() for unit in units))
    encoder = load_text_encoder()
    if args.whole_text:  # a text's windows are its units
        windows = [encoder.document_windows(text) for text in distinct]
        ids = [window for text_windows in windows for window in text_windows]
        starts = np.concatenate([[0], np.cumsum([len(w) for w in windows])])
        position = {text: k for k, text in enumerate(distinct)}
        lines_of = {
            i: list(range(starts[position[text]], starts[position[text] + 1]))
            for i, (text,) in texts.items()
        }
    else:
        index = {line: k for k, line in enumerate(distinct)}
        lines_of = {i: [index[line] for line in lines] for i, lines in texts.items()}
        ids = encoder.tokenize(distinct)
    states, layers = encode_below(encoder, ids, args.top)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in sorted(chosen, key=lambda n: int(n.split("-")[1])):
        held_out = set(folds[name])
        train = [examples[i] for i in lines_of if i not in held_out and examples[i].labelled]
        test = [examples[i] for i in folds[name] if i in lines_of]
        fold = int(name.split("-")[1])
        predictions = run_fold(
            fold, train, test, lines_of, states, layers, args.epochs, args.lr, dataset_weights
        )
        document = {
            "fold": fold,
            "recipe": {
                "top": args.top,
                "lr": args.lr,
                "epochs": args.epochs,
                "whole_text": args.whole_text,
                "weights": dataset_weights,
            },
            "predictions": {"clean": predictions},
        }
        (args.out / f"{name}.json").write_text(json.dumps(document) + "\n")
        print(f"{name}: {len(train)} training lyrics, {len(test)} tested")
    return 0


if __name__ == "__main__":
    sys.exit(main())
