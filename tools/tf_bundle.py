"""Read TensorFlow 1 checkpoints (TensorBundle V2) without TensorFlow.

A checkpoint ``PREFIX`` is two files:

- ``PREFIX.index``: an SSTable (LevelDB table format) mapping each variable name to a
  ``BundleEntryProto`` (dtype, shape, shard, offset, size, crc32c); the empty key holds the
  ``BundleHeaderProto``.
- ``PREFIX.data-00000-of-0000N``: the raw tensor bytes, little endian, one after the other.

Everything here is parsed by hand (protobuf varints, SSTable blocks, Snappy, CRC-32C), so
porting needs only numpy. Used by :mod:`tools.port_musicnn`; not needed at run time.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["BundleEntry", "TFCheckpointReader", "crc32c", "read_checkpoint"]

SSTABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5  # 1 byte compression type + 4 bytes masked CRC-32C

# tensorflow/core/framework/types.proto
TF_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),  # DT_FLOAT
    2: np.dtype("<f8"),  # DT_DOUBLE
    3: np.dtype("<i4"),  # DT_INT32
    4: np.dtype("u1"),  # DT_UINT8
    5: np.dtype("<i2"),  # DT_INT16
    6: np.dtype("i1"),  # DT_INT8
    9: np.dtype("<i8"),  # DT_INT64
    10: np.dtype("?"),  # DT_BOOL
    17: np.dtype("<u2"),  # DT_UINT16
    19: np.dtype("<f2"),  # DT_HALF
    22: np.dtype("<u4"),  # DT_UINT32
    23: np.dtype("<u8"),  # DT_UINT64
}


# --------------------------------------------------------------------------- protobuf wire format


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a base-128 varint at ``pos``; returns (value, next position)."""
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def iter_fields(buf: bytes):
    """Yield (field number, wire type, value) for each field of a serialised message.

    Values: int for varint (0) and fixed (1, 5) wire types, bytes for length-delimited (2).
    """
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 1:
            (value,) = struct.unpack_from("<Q", buf, pos)
            pos += 8
        elif wire == 2:
            length, pos = read_varint(buf, pos)
            value = bytes(buf[pos : pos + length])
            if len(value) != length:
                raise ValueError("truncated length-delimited field")
            pos += length
        elif wire == 5:
            (value,) = struct.unpack_from("<I", buf, pos)
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


@dataclass(frozen=True)
class BundleEntry:
    """A ``BundleEntryProto`` (tensorflow/core/protobuf/tensor_bundle.proto)."""

    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None
    sliced: bool


def parse_shape(buf: bytes) -> tuple[int, ...]:
    """``TensorShapeProto``: repeated Dim dim = 2 (Dim: int64 size = 1); unknown_rank = 3."""
    dims = []
    for field, _, value in iter_fields(buf):
        if field == 2:
            size = 0
            for dfield, _, dvalue in iter_fields(value):
                if dfield == 1:
                    size = _signed64(dvalue)
            dims.append(size)
        elif field == 3 and value:
            raise ValueError("tensor of unknown rank")
    return tuple(dims)


def parse_bundle_entry(buf: bytes) -> BundleEntry:
    dtype = shard_id = offset = size = 0
    shape: tuple[int, ...] = ()
    crc = None
    sliced = False
    for field, _, value in iter_fields(buf):
        if field == 1:
            dtype = value
        elif field == 2:
            shape = parse_shape(value)
        elif field == 3:
            shard_id = value
        elif field == 4:
            offset = value
        elif field == 5:
            size = value
        elif field == 6:
            crc = value
        elif field == 7:
            sliced = True
    return BundleEntry(dtype, shape, shard_id, offset, size, crc, sliced)


def parse_bundle_header(buf: bytes) -> dict[str, int]:
    """``BundleHeaderProto``: num_shards = 1, endianness = 2 (0 little, 1 big), version = 3."""
    header = {"num_shards": 0, "endianness": 0}
    for field, _, value in iter_fields(buf):
        if field == 1:
            header["num_shards"] = value
        elif field == 2:
            header["endianness"] = value
    return header


# --------------------------------------------------------------------------- checksums, snappy


def _make_crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = _make_crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as LevelDB and TensorFlow use it."""
    crc = 0xFFFFFFFF
    table = _CRC32C_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def unmask_crc(masked: int) -> int:
    """Undo LevelDB's ``crc32c::Mask`` (rotate right 15 bits and add a constant)."""
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def snappy_decompress(data: bytes) -> bytes:
    """Decompress a raw Snappy block (the format LevelDB uses for compression type 1)."""
    length, pos = read_varint(data, 0)
    out = bytearray()
    while pos < len(data):
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            n = tag >> 2
            if n >= 60:
                extra = n - 59
                n = int.from_bytes(data[pos : pos + extra], "little")
                pos += extra
            n += 1
            out += data[pos : pos + n]
            pos += n
            continue
        if kind == 1:
            n = ((tag >> 2) & 7) + 4
            offset = ((tag >> 5) << 8) | data[pos]
            pos += 1
        elif kind == 2:
            n = (tag >> 2) + 1
            offset = int.from_bytes(data[pos : pos + 2], "little")
            pos += 2
        else:
            n = (tag >> 2) + 1
            offset = int.from_bytes(data[pos : pos + 4], "little")
            pos += 4
        if offset == 0 or offset > len(out):
            raise ValueError("corrupt snappy block")
        start = len(out) - offset
        for i in range(n):  # copies may overlap their own output
            out.append(out[start + i])
    if len(out) != length:
        raise ValueError("snappy length mismatch")
    return bytes(out)


# --------------------------------------------------------------------------- SSTable


def _read_block_handle(buf: bytes, pos: int) -> tuple[int, int, int]:
    offset, pos = read_varint(buf, pos)
    size, pos = read_varint(buf, pos)
    return offset, size, pos


def _read_block(table: bytes, offset: int, size: int, verify: bool) -> bytes:
    contents = table[offset : offset + size]
    trailer = table[offset + size : offset + size + BLOCK_TRAILER_SIZE]
    if len(contents) != size or len(trailer) != BLOCK_TRAILER_SIZE:
        raise ValueError("SSTable block out of range")
    compression = trailer[0]
    if verify:
        (masked,) = struct.unpack("<I", trailer[1:])
        if crc32c(contents + trailer[:1]) != unmask_crc(masked):
            raise ValueError(f"SSTable block at {offset}: checksum mismatch")
    if compression == 0:
        return contents
    if compression == 1:
        return snappy_decompress(contents)
    raise ValueError(f"unsupported SSTable block compression {compression}")


def _iter_block(block: bytes):
    """Yield (key, value) of one block (prefix-compressed keys, restart array at the end)."""
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 - 4 * num_restarts
    pos = 0
    key = b""
    while pos < end:
        shared, pos = read_varint(block, pos)
        non_shared, pos = read_varint(block, pos)
        value_len, pos = read_varint(block, pos)
        key = key[:shared] + block[pos : pos + non_shared]
        pos += non_shared
        value = block[pos : pos + value_len]
        pos += value_len
        yield bytes(key), bytes(value)


def read_sstable(path: str | Path, verify: bool = True) -> dict[bytes, bytes]:
    """All (key, value) pairs of a LevelDB-format table file."""
    table = Path(path).read_bytes()
    if len(table) < FOOTER_SIZE:
        raise ValueError(f"{path}: too short for an SSTable")
    footer = table[-FOOTER_SIZE:]
    (magic,) = struct.unpack("<Q", footer[-8:])
    if magic != SSTABLE_MAGIC:
        raise ValueError(f"{path}: not an SSTable (bad magic)")
    _, _, pos = _read_block_handle(footer, 0)  # metaindex block: unused (no filters in bundles)
    index_offset, index_size, _ = _read_block_handle(footer, pos)
    index = _read_block(table, index_offset, index_size, verify)
    entries: dict[bytes, bytes] = {}
    for _, handle in _iter_block(index):
        offset, size, _ = _read_block_handle(handle, 0)
        entries.update(_iter_block(_read_block(table, offset, size, verify)))
    return entries


# --------------------------------------------------------------------------- the bundle


class TFCheckpointReader:
    """Variables of a TF1 checkpoint, read with numpy only.

    ``prefix`` is what ``tf.train.Saver.restore`` takes: ``PREFIX.index`` and
    ``PREFIX.data-*`` must exist. (musicnn's prefix is its model folder plus ``/``, so its files
    are the hidden ``.index`` and ``.data-00000-of-00001``.)
    """

    def __init__(self, prefix: str | Path, verify: bool = True):
        self.prefix = str(prefix)
        self.verify = verify
        raw = read_sstable(self.prefix + ".index", verify=verify)
        header = parse_bundle_header(raw.pop(b"", b""))
        if header["endianness"] != 0:
            raise ValueError("big-endian checkpoints are not supported")
        self.num_shards = max(header["num_shards"], 1)
        self.entries = {key.decode(): parse_bundle_entry(value) for key, value in raw.items()}
        self._shards: dict[int, bytes] = {}

    def names(self) -> list[str]:
        return sorted(self.entries)

    def shape(self, name: str) -> tuple[int, ...]:
        return self.entries[name].shape

    def _shard(self, shard_id: int) -> bytes:
        if shard_id not in self._shards:
            path = f"{self.prefix}.data-{shard_id:05d}-of-{self.num_shards:05d}"
            self._shards[shard_id] = Path(path).read_bytes()
        return self._shards[shard_id]

    def tensor(self, name: str) -> np.ndarray:
        entry = self.entries[name]
        if entry.sliced:
            raise ValueError(f"{name}: partitioned variables are not supported")
        if entry.dtype not in TF_DTYPES:
            raise ValueError(f"{name}: unsupported dtype enum {entry.dtype}")
        dtype = TF_DTYPES[entry.dtype]
        data = self._shard(entry.shard_id)[entry.offset : entry.offset + entry.size]
        if len(data) != entry.size:
            raise ValueError(f"{name}: data file too short")
        if self.verify and entry.crc32c is not None and crc32c(data) != unmask_crc(entry.crc32c):
            raise ValueError(f"{name}: tensor checksum mismatch")
        count = int(np.prod(entry.shape, dtype=np.int64))
        if count * dtype.itemsize != entry.size:
            raise ValueError(f"{name}: size {entry.size} does not fit shape {entry.shape}")
        return np.frombuffer(data, dtype=dtype).reshape(entry.shape).copy()

    def to_dict(self, skip=lambda name: False) -> dict[str, np.ndarray]:
        return {name: self.tensor(name) for name in self.names() if not skip(name)}


def read_checkpoint(prefix: str | Path, verify: bool = True) -> dict[str, np.ndarray]:
    """Every variable of the checkpoint at ``prefix`` as numpy arrays."""
    return TFCheckpointReader(prefix, verify=verify).to_dict()
