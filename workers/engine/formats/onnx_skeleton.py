"""An ONNX file read without its weights: the graph, with large initializers' bytes left on disk.

Checking a model needs its graph, not its weights: the checker, shape
inference and the refusals in :mod:`workers.engine.formats.onnx` look at
nodes, types, shapes and small constants. Parsing the whole file costs twice
its size (the bytes, then the message), and handing the message to the
checker and to shape inference serialises it again. :func:`read_skeleton`
walks the protobuf wire format instead and copies everything except the
``raw_data`` of the top-level graph's initializers, which it seeks past,
noting their lengths. A file of any size is then checked in memory
proportional to its graph.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import BinaryIO

__all__ = ["SKIP_BYTES", "Skeleton", "SkeletonError", "read_skeleton"]

#: Initializer data at least this large stays on disk; smaller tensors (shapes,
#: axes, scales) are kept, since shape inference and the refusals read them.
SKIP_BYTES = 64 * 1024

_MODEL_GRAPH = 7  # ModelProto.graph
_GRAPH_INITIALIZER = 5  # GraphProto.initializer
_TENSOR_RAW_DATA = 9  # TensorProto.raw_data
_VARINT, _I64, _LEN, _SGROUP, _EGROUP, _I32 = 0, 1, 2, 3, 4, 5


class SkeletonError(ValueError):
    """The bytes are not a well-formed protobuf message (truncated, or not protobuf at all)."""


@dataclass(frozen=True)
class Skeleton:
    """The file's bytes without the skipped weights, and the length of what was skipped per initializer."""

    data: bytes
    #: Index among the graph's initializers -> bytes of ``raw_data`` left out.
    skipped: dict[int, int]


def _varint(buf: BinaryIO) -> int:
    shift = result = 0
    while True:
        byte = buf.read(1)
        if not byte:
            raise SkeletonError("the file ends inside a field")
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return result
        shift += 7
        if shift >= 70:
            raise SkeletonError("a varint is too long")


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _fields(buf: BinaryIO, end: int) -> list[tuple[int, int, int, int]]:
    """(field number, wire type, start of the value, end of the field) for each field up to `end`."""
    found = []
    while buf.tell() < end:
        start = buf.tell()
        key = _varint(buf)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise SkeletonError("field number 0")
        if wire == _VARINT:
            _varint(buf)
        elif wire == _I64:
            buf.seek(8, io.SEEK_CUR)
        elif wire == _I32:
            buf.seek(4, io.SEEK_CUR)
        elif wire == _LEN:
            length = _varint(buf)
            value_start = buf.tell()
            buf.seek(value_start + length)
            found.append((number, wire, value_start, buf.tell()))
            if buf.tell() > end:
                raise SkeletonError("a field runs past the end of its message")
            continue
        else:  # groups are not used by ONNX; wire types 6 and 7 do not exist
            raise SkeletonError(f"wire type {wire}")
        if buf.tell() > end:
            raise SkeletonError("a field runs past the end of its message")
        found.append((number, wire, start, buf.tell()))
    return found


def _copy(buf: BinaryIO, start: int, end: int) -> bytes:
    buf.seek(start)
    data = buf.read(end - start)
    if len(data) != end - start:
        raise SkeletonError("the file ends inside a field")
    return data


def _field_bytes(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | _LEN) + _encode_varint(len(payload)) + payload


def _tensor(buf: BinaryIO, start: int, end: int) -> tuple[bytes, int | None]:
    """A TensorProto's bytes without a large raw_data, and that raw_data's length (None if kept)."""
    buf.seek(start)
    fields = _fields(buf, end)
    big = [f for f in fields if f[0] == _TENSOR_RAW_DATA and f[1] == _LEN and f[3] - f[2] >= SKIP_BYTES]
    if not big:
        return _copy(buf, start, end), None
    parts = []
    for number, wire, value_start, field_end in fields:
        if number == _TENSOR_RAW_DATA and wire == _LEN:
            continue
        if wire == _LEN:
            parts.append(_field_bytes(number, _copy(buf, value_start, field_end)))
        else:
            parts.append(_copy(buf, value_start, field_end))
    # The last raw_data wins, as in a parse.
    raw = [f for f in fields if f[0] == _TENSOR_RAW_DATA and f[1] == _LEN][-1]
    return b"".join(parts), raw[3] - raw[2]


def _graph(buf: BinaryIO, start: int, end: int, skipped: dict[int, int], index: list[int]) -> bytes:
    buf.seek(start)
    parts = []
    for number, wire, value_start, field_end in _fields(buf, end):
        if number == _GRAPH_INITIALIZER and wire == _LEN:
            tensor, left_out = _tensor(buf, value_start, field_end)
            if left_out is not None:
                skipped[index[0]] = left_out
            index[0] += 1
            parts.append(_field_bytes(number, tensor))
        elif wire == _LEN:
            parts.append(_field_bytes(number, _copy(buf, value_start, field_end)))
        else:
            parts.append(_copy(buf, value_start, field_end))
    return b"".join(parts)


def read_skeleton(path: str) -> Skeleton:
    """Read `path` as an ONNX ModelProto's bytes, leaving large initializer data on disk.

    Raises
    ------
    SkeletonError
        When the wire format is broken (a truncated file, or one that is not protobuf).
    """
    size = os.path.getsize(path)
    skipped: dict[int, int] = {}
    index = [0]  # initializers seen, across repeated graph fields
    parts = []
    with open(path, "rb", buffering=1 << 16) as buf:
        for number, wire, value_start, field_end in _fields(buf, size):
            if number == _MODEL_GRAPH and wire == _LEN:
                parts.append(_field_bytes(number, _graph(buf, value_start, field_end, skipped, index)))
            elif wire == _LEN:
                parts.append(_field_bytes(number, _copy(buf, value_start, field_end)))
            else:
                parts.append(_copy(buf, value_start, field_end))
    return Skeleton(data=b"".join(parts), skipped=skipped)
