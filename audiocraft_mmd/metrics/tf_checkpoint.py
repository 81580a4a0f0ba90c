"""Reads TensorFlow checkpoints (the "tensor bundle" format) with numpy only, no TensorFlow.

A checkpoint ``PREFIX`` is two files:

- ``PREFIX.index``: an SSTable (LevelDB's table format) mapping each variable name to a
  ``BundleEntryProto`` (dtype, shape, shard, byte offset and size); the empty key holds the header.
- ``PREFIX.data-00000-of-0000N``: the raw little-endian tensor bytes of shard 0..N-1.

Only what reading float/int variables needs is implemented: uncompressed blocks, the protobuf
wire format of those two messages, and no sliced (partitioned) variables.
"""

from __future__ import annotations

from pathlib import Path
import struct
import typing as tp

import numpy as np

TABLE_MAGIC = 0xDB4775248B80FB57  # LevelDB's table magic number, last 8 bytes of the file
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5  # 1 byte compression type + 4 bytes CRC
# tensorflow/core/framework/types.proto DataType values this reader supports.
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 9: np.int64,
          10: np.bool_, 19: np.float16}


class CheckpointFormatError(ValueError):
    """The files are not a TensorFlow tensor bundle this reader understands; the message says why."""


def _varint(buffer: bytes, pos: int) -> tp.Tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= len(buffer):
            raise CheckpointFormatError("truncated varint")
        byte = buffer[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _proto_fields(buffer: bytes) -> tp.Iterator[tp.Tuple[int, int, tp.Any]]:
    """(field number, wire type, value) of a serialised protobuf message, in order."""
    pos = 0
    value: tp.Union[int, bytes]
    while pos < len(buffer):
        key, pos = _varint(buffer, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buffer, pos)
        elif wire == 1:
            value, pos = buffer[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buffer, pos)
            value, pos = buffer[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = buffer[pos:pos + 4], pos + 4
        else:
            raise CheckpointFormatError(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


class BundleEntry(tp.NamedTuple):
    dtype: int
    shape: tp.Tuple[int, ...]
    shard: int
    offset: int
    size: int
    sliced: bool


def _bundle_entry(buffer: bytes) -> BundleEntry:
    dtype, shape, shard, offset, size, sliced = 0, [], 0, 0, 0, False
    for field, _, value in _proto_fields(buffer):
        if field == 1:
            dtype = value
        elif field == 2:  # TensorShapeProto: repeated Dim dim = 2 { int64 size = 1 }
            for shape_field, _, dim in _proto_fields(value):
                if shape_field == 2:
                    sizes = [size for dim_field, _, size in _proto_fields(dim) if dim_field == 1]
                    shape.append(sizes[0] if sizes else 0)
        elif field == 3:
            shard = value
        elif field == 4:
            offset = value
        elif field == 5:
            size = value
        elif field == 7:
            sliced = True
    return BundleEntry(dtype, tuple(shape), shard, offset, size, sliced)


def _block_entries(data: bytes, offset: int, size: int) -> tp.Iterator[tp.Tuple[bytes, bytes]]:
    """Key/value pairs of one table block (keys are prefix-compressed against the previous key)."""
    if offset + size + BLOCK_TRAILER_SIZE > len(data):
        raise CheckpointFormatError("block beyond the end of the index file")
    if data[offset + size] != 0:
        raise CheckpointFormatError("compressed index blocks are not supported")
    block = data[offset:offset + size]
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * num_restarts
    pos, key = 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        value_length, pos = _varint(block, pos)
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + value_length]
        pos += value_length


def read_index(index_path: tp.Union[str, Path]) -> tp.Dict[str, BundleEntry]:
    """Variable name -> :class:`BundleEntry` of a checkpoint's ``.index`` file."""
    data = Path(index_path).read_bytes()
    if len(data) < FOOTER_SIZE or struct.unpack_from("<Q", data, len(data) - 8)[0] != TABLE_MAGIC:
        raise CheckpointFormatError(f"{index_path} is not a TensorFlow checkpoint index (bad magic number)")
    footer = data[len(data) - FOOTER_SIZE:]
    _, pos = _varint(footer, 0)  # metaindex handle: unused
    _, pos = _varint(footer, pos)
    index_offset, pos = _varint(footer, pos)
    index_size, _ = _varint(footer, pos)
    entries = {}
    for _, handle in _block_entries(data, index_offset, index_size):
        block_offset, pos = _varint(handle, 0)
        block_size, _ = _varint(handle, pos)
        for key, value in _block_entries(data, block_offset, block_size):
            if key:  # the empty key is the BundleHeaderProto
                entries[key.decode()] = _bundle_entry(value)
    return entries


def read_checkpoint(prefix: tp.Union[str, Path], names: tp.Optional[tp.Iterable[str]] = None
                    ) -> tp.Dict[str, np.ndarray]:
    """Tensors of a TensorFlow checkpoint as numpy arrays.

    Args:
        prefix: Checkpoint prefix: ``PREFIX.index`` and ``PREFIX.data-*`` must exist (for a
            checkpoint saved into a folder with an empty name, the prefix is ``folder/``).
        names: Variables to read (default: all of a supported dtype).

    Raises:
        CheckpointFormatError: Missing files, unsupported dtype or sliced variable, truncated data.
    """
    prefix = str(prefix)
    index_path = Path(prefix + ".index")
    if not index_path.exists():
        raise CheckpointFormatError(f"no TensorFlow checkpoint index at {index_path}")
    entries = read_index(index_path)
    wanted = list(entries) if names is None else list(names)
    missing = [name for name in wanted if name not in entries]
    if missing:
        raise CheckpointFormatError(f"{index_path} has no variable(s) {missing}")
    shards = {}
    tensors = {}
    for name in wanted:
        entry = entries[name]
        if entry.dtype not in DTYPES:
            if names is None:
                continue
            raise CheckpointFormatError(f"{name}: unsupported dtype {entry.dtype}")
        if entry.sliced:
            raise CheckpointFormatError(f"{name}: sliced (partitioned) variables are not supported")
        if entry.shard not in shards:
            probe = Path(prefix + "x")
            candidates = sorted(probe.parent.glob(probe.name[:-1] + f".data-{entry.shard:05d}-of-*"))
            if not candidates:
                raise CheckpointFormatError(f"no data shard {entry.shard} for checkpoint {prefix}")
            shards[entry.shard] = candidates[0].read_bytes()
        shard = shards[entry.shard]
        dtype = np.dtype(DTYPES[entry.dtype]).newbyteorder("<")
        count = int(np.prod(entry.shape)) if entry.shape else 1
        if count * dtype.itemsize != entry.size or entry.offset + entry.size > len(shard):
            raise CheckpointFormatError(f"{name}: {entry.size} bytes at {entry.offset} do not hold shape {entry.shape}")
        tensors[name] = np.frombuffer(shard, dtype, count, entry.offset).reshape(entry.shape).copy()
    return tensors
