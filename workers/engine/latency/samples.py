"""Every latency sample of a measurement, stored compactly and exactly.

A profile reports percentiles of up to about 100,000 calls per variant;
to let anyone recompute each of them, and to let a later regression check
see the calls in the order they were measured, all samples are stored, not
a thinned subset. The encoding is lossless and needs only the standard
library and numpy to read::

    raw = zlib.decompress(base64.b64decode(stored["data"]))
    planes = numpy.frombuffer(raw, dtype=numpy.uint8).reshape(stored["itemsize"], stored["count"])
    samples_ns = planes.T.copy().view(stored["dtype"]).ravel()

The nanosecond integers are written little-endian (``<u4`` when they fit in
32 bits, else ``<i8``) and their bytes regrouped by significance (all first
bytes, then all second bytes, …) before zlib, which compresses the slowly
varying high bytes to almost nothing.
"""

from __future__ import annotations

import base64
import zlib
from typing import Any

import numpy as np

from workers.engine.arrays import Array
from workers.engine.errors import EngineError

__all__ = ["ENCODING", "decode_samples", "encode_samples"]

ENCODING = "byteplanes+zlib+base64"


def encode_samples(samples_ns: Array) -> dict[str, Any]:
    """``{"encoding", "dtype", "itemsize", "count", "data"}`` holding every sample, in order."""
    values = np.asarray(samples_ns).ravel()
    if values.size and (values < 0).any():
        raise EngineError("latency samples cannot be negative", permanent=False)
    ints = values.astype(np.int64)
    if not np.array_equal(ints, values):
        raise EngineError("latency samples must be whole nanoseconds", permanent=False)
    dtype = np.dtype("<u4") if (ints.size == 0 or int(ints.max()) < 2**32) else np.dtype("<i8")
    typed = ints.astype(dtype)
    planes = typed.view(np.uint8).reshape(typed.size, dtype.itemsize).T
    data = base64.b64encode(zlib.compress(np.ascontiguousarray(planes).tobytes(), 9)).decode("ascii")
    return {"encoding": ENCODING, "dtype": dtype.str, "itemsize": dtype.itemsize, "count": int(typed.size),
            "data": data}  # fmt: skip


def decode_samples(stored: dict[str, Any]) -> Array:
    """The int64 nanosecond samples :func:`encode_samples` stored, in measurement order."""
    if stored.get("encoding") != ENCODING:
        raise EngineError(f"unknown sample encoding {stored.get('encoding')!r}", permanent=True)
    count, itemsize = int(stored["count"]), int(stored["itemsize"])
    raw = zlib.decompress(base64.b64decode(stored["data"]))
    planes = np.frombuffer(raw, dtype=np.uint8).reshape(itemsize, count)
    return planes.T.copy().view(np.dtype(stored["dtype"])).ravel().astype(np.int64)
