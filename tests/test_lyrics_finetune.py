"""tools.lyrics_finetune: a lyrics-only model per fold on cached states of the lower layers."""

from __future__ import annotations

import numpy as np
import torch
from transformers import BertConfig
from transformers.models.bert.modeling_bert import BertLayer

from lgfn_model.training.datasets import Example
from tools.lyrics_finetune import LineStates, LyricsModel, run_fold

DIM = 8


def _states(moods: list[int], rng: np.random.Generator) -> tuple[LineStates, dict[str, list[int]]]:
    """Three lines per file; each line's tokens carry the file's mood in one channel."""
    parts, lengths, lines_of = [], [], {}
    for k, mood in enumerate(moods):
        lines_of[f"x:{k}"] = []
        for _ in range(3):
            tokens = int(rng.integers(2, 6))
            part = rng.normal(0, 0.3, (tokens, DIM))
            part[:, mood] += 2.0
            lines_of[f"x:{k}"].append(len(lengths))
            parts.append(part.astype(np.float16))
            lengths.append(tokens)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return LineStates(np.concatenate(parts), offsets), lines_of


def _layer() -> BertLayer:
    torch.manual_seed(0)
    config = BertConfig(hidden_size=DIM, num_attention_heads=2, intermediate_size=16)
    return BertLayer(config).eval()


def _example(k: int, mood: int) -> Example:
    signs = {0: (1.0, 1.0), 1: (-1.0, 1.0), 2: (-1.0, -1.0), 3: (1.0, -1.0)}[mood]
    return Example(f"x:{k}", "nju", None, None, mood, *signs)


def test_each_fold_learns_the_moods_and_the_frozen_control_keeps_the_layers() -> None:
    rng = np.random.default_rng(0)
    moods = [k % 4 for k in range(80)]
    states, lines_of = _states(moods, rng)
    examples = [_example(k, m) for k, m in enumerate(moods)]
    train, test = examples[:60], examples[60:]
    layer = _layer()
    before = {k: v.clone() for k, v in layer.state_dict().items()}

    tuned = run_fold(1, train, test, lines_of, states, [layer], epochs=30, lr=1e-3)
    assert tuned["id"] == [e.id for e in test]
    right = np.mean([np.argmax(p) == e.mood for p, e in zip(tuned["probs"], test, strict=True)])
    assert right > 0.8
    valence = np.mean(
        [(p > 0.5) == (e.valence > 0) for p, e in zip(tuned["p_valence"], test, strict=True)]
    )
    assert valence > 0.8
    # The fold's model trains copies: the layers handed in stay as they were.
    assert all(torch.equal(before[k], v) for k, v in layer.state_dict().items())

    frozen = LyricsModel([layer], DIM, train_layers=False)
    assert not any(p.requires_grad for p in frozen.layers.parameters())
    again = run_fold(1, train, test, lines_of, states, [layer], epochs=30, lr=1e-3)
    np.testing.assert_allclose(again["probs"], tuned["probs"], atol=1e-6)  # seeded per fold


def test_a_last_batch_of_one_file_is_left_to_the_next_shuffle() -> None:
    rng = np.random.default_rng(1)
    moods = [k % 4 for k in range(20)]
    states, lines_of = _states(moods, rng)
    examples = [_example(k, m) for k, m in enumerate(moods)]
    out = run_fold(2, examples[:17], examples[17:], lines_of, states, [_layer()], 1, 1e-3)
    assert len(out["probs"]) == 3  # 17 = 16 + 1 files: the one left over does not crash
