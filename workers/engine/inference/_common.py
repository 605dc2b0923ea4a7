"""Helpers the backends share: option checks, ONNX operator listing, CUDA discovery, messages.

Nothing here imports a runtime library at module level, so every backend can
use it whatever is installed on the worker.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from workers.engine.errors import BackendUnavailable, EngineError, clean_message

if TYPE_CHECKING:
    from workers.engine.arrays import Array

__all__ = [
    "PRECISIONS",
    "CudaDriver",
    "STANDARD_ONNX_DOMAINS",
    "clean_message",
    "cuda_devices",
    "default_cache_dir",
    "dtype_precision",
    "file_sha256",
    "int_option",
    "onnx_op_types",
    "precision_option",
    "slug",
    "unsupported_operators",
    "unsupported_operators_error",
]

#: The precision names every backend and the service use.
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")

#: ONNX operator domains every ONNX engine implements ("" is the default domain).
STANDARD_ONNX_DOMAINS: frozenset[str] = frozenset({"", "ai.onnx"})

# numpy element type -> precision name, for backends that run a model in its
# own types (ONNX Runtime, TFLite).
_DTYPE_PRECISION: dict[str, str] = {
    "float32": "fp32",
    "float16": "fp16",
    "bfloat16": "bf16",
    "float64": "fp64",
    "int8": "int8",
    "uint8": "int8",
}


def precision_option(backend: str, options: dict[str, Any], allowed: Iterable[str]) -> str:
    """Return ``options["precision"]`` checked against what the backend offers.

    Unset means ``"fp32"``: results must not change with the worker's CPU
    (OpenVINO, for one, would pick bf16 by itself on CPUs with AMX).

    Raises
    ------
    EngineError
        Permanent, naming the precisions that are available.
    """
    allowed = tuple(allowed)
    value = options.get("precision")
    if value is None:
        value = "fp32"
    if value not in allowed:
        raise EngineError(
            f"{backend} backend: precision {value!r} is not available here; choose one of {', '.join(allowed)}"
        )
    return str(value)


def int_option(backend: str, options: dict[str, Any], key: str, *, minimum: int = 0) -> int | None:
    """Return an integer option (``None`` when unset), refusing bools, floats and values below ``minimum``."""
    value = options.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise EngineError(f"{backend} backend: {key} must be an integer >= {minimum}, got {value!r}")
    return value


def dtype_precision(dtypes: Iterable[str]) -> str:
    """Name the precision a model computes in from its tensors' element types.

    The most common floating-point type wins; a model without one (integer
    or string tensors only) reports ``"native"``.
    """
    counts: dict[str, int] = {}
    for dtype in dtypes:
        if dtype.startswith(("float", "bfloat")):
            counts[dtype] = counts.get(dtype, 0) + 1
    if not counts:
        return "native"
    top = max(counts, key=lambda d: counts[d])
    return _DTYPE_PRECISION.get(top, top)


def file_sha256(path: str) -> str:
    """SHA-256 of a file, hex, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------- ONNX operators


def onnx_op_types(path: str) -> list[str]:
    """List the operator types an ONNX file uses, as sorted ``"domain:OpType"`` strings.

    The default domain is written ``ai.onnx``. Nodes inside control-flow
    bodies (``If``, ``Loop``, ``Scan``) and model-local functions count too.
    External data is never opened: only the graph matters here.

    Raises
    ------
    EngineError
        When the file cannot be parsed as ONNX.
    """
    import onnx  # imported late: only ONNX-reading backends need it

    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as exc:  # DecodeError, OSError, ...: one message for all
        raise EngineError(f"cannot read the ONNX graph: {clean_message(exc, path)}") from exc
    found = {_op_name(node.domain, node.op_type) for node in _walk_nodes(model.graph)}
    local = {(f.domain, f.name) for f in model.functions}
    for function in model.functions:
        for node in function.node:
            found.add(_op_name(node.domain, node.op_type))
    # A call to a model-local function is not an operator the engine must know.
    found -= {_op_name(d, n) for d, n in local}
    return sorted(found)


def unsupported_operators(path: str, supported_domains: Iterable[str] = STANDARD_ONNX_DOMAINS) -> list[str]:
    """The operators of an ONNX file outside ``supported_domains`` (``"domain:OpType"``, sorted).

    Engines that implement only the standard ONNX operator set (OpenVINO,
    TensorRT) cannot run scikit-learn's ``ai.onnx.ml`` operators, nor ONNX
    Runtime's ``com.microsoft`` contrib operators.
    """
    domains = {("ai.onnx" if d == "" else d) for d in supported_domains}
    return [op for op in onnx_op_types(path) if op.rpartition(":")[0] not in domains]


def unsupported_operators_error(backend: str, operators: Iterable[str]) -> EngineError:
    """A permanent error naming the operators an engine cannot run, with what to do instead."""
    ops = sorted(set(operators))
    message = f"{backend} cannot run this model: unsupported operators {', '.join(ops)}"
    if any(op.startswith(("ai.onnx.ml:", "com.microsoft:")) for op in ops):
        message += "; run it with the onnxruntime backend, which implements them"
    return EngineError(message, permanent=True)


def _op_name(domain: str, op_type: str) -> str:
    return f"{domain or 'ai.onnx'}:{op_type}"


def _walk_nodes(graph: Any) -> Iterator[Any]:
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from _walk_nodes(attr.g)
            for sub in attr.graphs:
                yield from _walk_nodes(sub)


# --------------------------------------------------------------------- CUDA devices

# Run in a child process: initialising CUDA in a Celery parent before it
# forks its pool leaves every child unable to use the GPU, and a broken driver
# may crash the process that loads it. The driver API (libcuda) comes with the
# NVIDIA driver itself, so this needs no Python package.
_CUDA_QUERY = r"""
import ctypes, json, sys
try:
    cuda = ctypes.CDLL("libcuda.so.1")
except OSError as exc:
    print(json.dumps({"error": "no CUDA driver (libcuda.so.1 cannot be loaded)"})); sys.exit()
rc = cuda.cuInit(0)
if rc != 0:
    print(json.dumps({"error": f"the CUDA driver failed to initialise (CUresult {rc})" if rc != 100 else "no CUDA device"}))
    sys.exit()
count = ctypes.c_int()
cuda.cuDeviceGetCount(ctypes.byref(count))
names = []
for i in range(count.value):
    dev = ctypes.c_int()
    cuda.cuDeviceGet(ctypes.byref(dev), i)
    buf = ctypes.create_string_buffer(256)
    cuda.cuDeviceGetName(buf, 256, dev)
    major, minor = ctypes.c_int(), ctypes.c_int()
    cuda.cuDeviceGetAttribute(ctypes.byref(major), 75, dev)
    cuda.cuDeviceGetAttribute(ctypes.byref(minor), 76, dev)
    names.append({"name": buf.value.decode(errors="replace"), "cc": f"{major.value}.{minor.value}"})
print(json.dumps({"devices": names} if names else {"error": "no CUDA device"}))
"""


@functools.lru_cache(maxsize=1)
def cuda_devices() -> tuple[tuple[dict[str, str], ...], str]:
    """The CUDA devices visible to this process, or why there are none.

    Returns
    -------
    (devices, reason)
        ``devices`` holds ``{"name": "NVIDIA H100 80GB HBM3", "cc": "9.0"}``
        per GPU in ``CUDA_VISIBLE_DEVICES`` order; ``reason`` is empty when
        there is at least one, else e.g. ``"no CUDA device"``. The answer is
        cached for the life of the process.
    """
    if sys.platform != "linux":
        return (), f"CUDA discovery is implemented for Linux only, not {sys.platform}"
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CUDA_QUERY], capture_output=True, text=True, timeout=60, check=False
        )
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        return (), f"the CUDA device query failed: {clean_message(exc)}"
    if "error" in answer:
        return (), str(answer["error"])
    return tuple(answer["devices"]), ""


_SLUG = re.compile(r"[^A-Za-z0-9.]+")


def slug(text: str) -> str:
    """``"NVIDIA H100 80GB HBM3"`` -> ``"NVIDIA-H100-80GB-HBM3"``: safe in a file name."""
    return _SLUG.sub("-", text).strip("-") or "unknown"


def default_cache_dir(kind: str) -> str:
    """Where compiled engines of ``kind`` are kept when the caller names no folder.

    ``EVALSVC_ENGINE_CACHE`` wins, then ``$XDG_CACHE_HOME/evalsvc``, then
    ``~/.cache/evalsvc``; ``kind`` (``"tensorrt"``, ``"ort-tensorrt"``) is a
    sub-folder so engines built by different runtimes never collide.
    """
    root = os.environ.get("EVALSVC_ENGINE_CACHE")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "evalsvc")
    return os.path.join(root, kind)


class CudaDriver:
    """The few CUDA driver calls a GPU backend needs: one context, one stream, device buffers, copies.

    Parameters
    ----------
    ordinal:
        The GPU, in ``CUDA_VISIBLE_DEVICES`` order.
    backend:
        The backend using it, named in the error when there is no driver.

    Notes
    -----
    It binds the device's primary context, the one the CUDA runtime (and so
    TensorRT) uses, so memory allocated here is valid for their kernels. It
    talks to ``libcuda`` (part of the NVIDIA driver) through ctypes, so no
    CUDA Python package is needed. Errors raise a transient
    :class:`EngineError` (out of memory, a busy device) or
    :class:`BackendUnavailable` (no driver).
    """

    def __init__(self, ordinal: int, *, backend: str) -> None:
        try:
            lib = ctypes.CDLL("libcuda.so.1")
        except OSError as exc:
            raise BackendUnavailable(backend, "no CUDA driver (libcuda.so.1 cannot be loaded)") from exc
        lib.cuMemAlloc_v2.argtypes = [ctypes.POINTER(ctypes.c_uint64), ctypes.c_size_t]
        lib.cuMemFree_v2.argtypes = [ctypes.c_uint64]
        lib.cuMemcpyHtoDAsync_v2.argtypes = [ctypes.c_uint64, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        lib.cuMemcpyDtoHAsync_v2.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_size_t, ctypes.c_void_p]
        lib.cuStreamSynchronize.argtypes = [ctypes.c_void_p]
        lib.cuStreamDestroy_v2.argtypes = [ctypes.c_void_p]
        lib.cuCtxSetCurrent.argtypes = [ctypes.c_void_p]
        lib.cuDevicePrimaryCtxRelease_v2.argtypes = [ctypes.c_int]
        self._lib = lib
        self._check(lib.cuInit(0), "cuInit")
        device = ctypes.c_int()
        self._check(lib.cuDeviceGet(ctypes.byref(device), ordinal), "cuDeviceGet")
        self.device = device.value
        context = ctypes.c_void_p()
        self._check(lib.cuDevicePrimaryCtxRetain(ctypes.byref(context), self.device), "cuDevicePrimaryCtxRetain")
        self.context = context
        self.make_current()
        stream = ctypes.c_void_p()
        self._check(lib.cuStreamCreate(ctypes.byref(stream), 0), "cuStreamCreate")
        self.stream = stream
        self._buffers: list[int] = []

    def make_current(self) -> None:
        self._check(self._lib.cuCtxSetCurrent(self.context), "cuCtxSetCurrent")

    @property
    def stream_handle(self) -> int:
        return int(self.stream.value or 0)

    def alloc(self, nbytes: int) -> int:
        ptr = ctypes.c_uint64()
        self._check(self._lib.cuMemAlloc_v2(ctypes.byref(ptr), max(int(nbytes), 1)), "cuMemAlloc")
        self._buffers.append(ptr.value)
        return int(ptr.value)

    def to_device(self, ptr: int, array: Array) -> None:
        self._check(self._lib.cuMemcpyHtoDAsync_v2(ptr, array.ctypes.data, array.nbytes, self.stream), "HtoD")

    def to_host(self, array: Array, ptr: int) -> None:
        self._check(self._lib.cuMemcpyDtoHAsync_v2(array.ctypes.data, ptr, array.nbytes, self.stream), "DtoH")

    def synchronize(self) -> None:
        self._check(self._lib.cuStreamSynchronize(self.stream), "cuStreamSynchronize")

    def close(self) -> None:
        lib = self._lib
        for ptr in self._buffers:
            lib.cuMemFree_v2(ptr)
        self._buffers = []
        if self.stream:
            lib.cuStreamDestroy_v2(self.stream)
            self.stream = ctypes.c_void_p()
        lib.cuDevicePrimaryCtxRelease_v2(self.device)

    def _check(self, result: int, what: str) -> None:
        if result != 0:
            text = ctypes.c_char_p()
            self._lib.cuGetErrorString(result, ctypes.byref(text))
            detail = text.value.decode() if text.value else f"CUresult {result}"
            # Out of memory or a busy device may pass; a bad model would not get here.
            raise EngineError(f"CUDA {what} failed: {detail}", permanent=False)
