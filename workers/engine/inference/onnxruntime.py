"""ONNX Runtime backend: CPU, and the CUDA and TensorRT execution providers of onnxruntime-gpu.

Devices
-------
``"cpu"``:
    CPUExecutionProvider.
``"cuda"`` (or ``"cuda:N"``):
    CUDAExecutionProvider on GPU N (0 by default), with the ``provider``
    option ``"tensorrt"`` TensorrtExecutionProvider in front of it. Both need
    the onnxruntime-gpu build (``pip install evalsvc[gpu]``, which replaces
    the CPU ``onnxruntime`` wheel) and a CUDA device; otherwise loading raises
    :class:`BackendUnavailable` saying which is missing.

Options
-------
precision:
    ``"fp32"`` (default) runs the model in its own types; ``"fp16"`` only
    with the TensorRT provider, which then builds FP16 engines.
provider:
    ``"tensorrt"`` to put TensorrtExecutionProvider first on a CUDA device.
cache_dir:
    Where the TensorRT provider keeps its engines (default: see
    :func:`workers.engine.inference._common.default_cache_dir`).
intra_op_num_threads:
    Threads used inside one operator; unset leaves ONNX Runtime's default
    (one per physical core).
inter_op_num_threads:
    Threads used to run independent operators in parallel; unset leaves the
    default.
graph_optimization_level:
    ``"disable"``, ``"basic"``, ``"extended"`` or ``"all"`` (the default).
allow_spinning:
    ``False`` stops the thread pools' busy-waiting between calls (ONNX
    Runtime spins by default, which suits back-to-back calls). A job that
    reads and converts data between calls sets it, so the idle pool does
    not take the cores the reader needs: evaluating a 1M-row CSV at batch
    8192 on two busy cores took about 40 % longer with spinning.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

from workers.engine.arrays import Array
from workers.engine.errors import BackendUnavailable, EngineError, InvalidArtifact
from workers.engine.inference._common import (
    clean_message,
    cuda_devices,
    default_cache_dir,
    dtype_precision,
    int_option,
    precision_option,
)
from workers.engine.inference.base import Backend
from workers.engine.types import Dim, ModelSpec, TensorSpec

__all__ = ["OnnxRuntimeBackend"]

CPU_EP = "CPUExecutionProvider"
CUDA_EP = "CUDAExecutionProvider"
TENSORRT_EP = "TensorrtExecutionProvider"
GPU_HINT = "pip uninstall -y onnxruntime && pip install evalsvc[gpu]"

_OPT_LEVELS: dict[str, Any] = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}

# ONNX Runtime writes element types as in "tensor(float)"; the engine uses
# numpy names everywhere.
_ORT_DTYPES: dict[str, str] = {
    "float": "float32",
    "double": "float64",
    "float16": "float16",
    "bfloat16": "bfloat16",
    "int8": "int8",
    "int16": "int16",
    "int32": "int32",
    "int64": "int64",
    "uint8": "uint8",
    "uint16": "uint16",
    "uint32": "uint32",
    "uint64": "uint64",
    "bool": "bool",
    "string": "string",
}
_TENSOR_TYPE = re.compile(r"tensor\((\w+)\)")
_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*")
_CUDA_DEVICE = re.compile(r"cuda(?::(\d+))?")

# Errors that mean "this model (or this input) is wrong", not "try again".
_MODEL_ERRORS = (
    ort_errors.InvalidProtobuf,
    ort_errors.InvalidGraph,
    ort_errors.NotImplemented,
    ort_errors.InvalidArgument,
    ort_errors.Fail,
)


class OnnxRuntimeBackend(Backend):
    """Run ONNX models with ONNX Runtime.

    Parameters
    ----------
    spec:
        An ONNX model file.
    device:
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    options:
        ``precision``, ``provider``, ``cache_dir``, ``intra_op_num_threads``,
        ``inter_op_num_threads``, ``graph_optimization_level``,
        ``allow_spinning`` (see the module docstring).

    Notes
    -----
    ONNX-ML operators (scikit-learn models converted with skl2onnx) run on
    the CPU provider; on CUDA they are placed on the CPU by ONNX Runtime.
    """

    name: ClassVar[str] = "onnxruntime"
    pip_hint: ClassVar[str] = "pip install onnxruntime"
    formats: ClassVar[tuple[str, ...]] = ("onnx",)
    option_names: ClassVar[frozenset[str]] = frozenset(
        {
            "precision",
            "provider",
            "cache_dir",
            "intra_op_num_threads",
            "inter_op_num_threads",
            "graph_optimization_level",
            "allow_spinning",
        }
    )

    def __init__(self, spec: ModelSpec, *, device: str = "cpu", options: dict[str, Any] | None = None) -> None:
        super().__init__(spec, device=device, options=options)
        self._session: ort.InferenceSession | None = None
        self._run: Callable[..., list[Any]] | None = None
        self._pack: Callable[[list[Any]], dict[str, Array]] = _packer([], tensors=True)
        self._output_names: list[str] = []
        self._tensor_outputs = False
        self._provider = ""
        self._precision = ""

    @classmethod
    def probe(cls) -> dict[str, Any]:
        available = set(ort.get_available_providers())
        devices = ["cpu"] if CPU_EP in available else []
        precisions = ["fp32"]
        # Only a GPU build lists the CUDA provider; only then is a device query worth a subprocess.
        if CUDA_EP in available and cuda_devices()[0]:
            devices.append("cuda")
            if TENSORRT_EP in available:
                precisions.append("fp16")
        if not devices:
            raise BackendUnavailable(cls.name, f"no usable execution provider among {sorted(available)}")
        return {"version": ort.__version__, "devices": devices, "precisions": precisions, "formats": list(cls.formats)}

    def load(self) -> None:
        if self._session is not None:
            return
        providers = self._providers()
        session = self._create_session(providers)
        wanted = providers[0][0] if isinstance(providers[0], tuple) else providers[0]
        used = session.get_providers()
        if not used or used[0] != wanted:
            # ONNX Runtime falls back to the CPU silently when a GPU provider
            # fails to start (missing CUDA or cuDNN libraries): say so instead.
            raise BackendUnavailable(
                self.name,
                f"{wanted} failed to start (ONNX Runtime fell back to {', '.join(used) or 'nothing'}); "
                "check the CUDA, cuDNN and TensorRT libraries on this worker",
                hint=GPU_HINT,
            )
        self._inputs = tuple(_spec(a) for a in session.get_inputs())
        self._outputs = tuple(_spec(a) for a in session.get_outputs())
        self._output_names = [o.name for o in self._outputs]
        self._tensor_outputs = all(o.type.startswith("tensor(") for o in session.get_outputs())
        self._pack = _packer(self._output_names, tensors=self._tensor_outputs, keys=self.output_keys)
        self._provider = wanted
        if self._precision != "fp16":
            self._precision = dtype_precision(s.dtype for s in self._inputs + self._outputs)
        self._session = session
        # InferenceSession.run checks in Python, on every call, things this
        # wrapper never needs (graph capture, OrtValue ownership, missing
        # inputs, which _run_error reports instead) and would silently fall
        # back to the CPU on an execution-provider failure, which describe()
        # must not hide. The bound C++ run it then calls skips all that; the
        # public method stays the fallback should a release rename it.
        inner = getattr(session, "_sess", None)
        self._run = inner.run if inner is not None and hasattr(inner, "run") else _public_run(session)

    def _providers(self) -> list[Any]:
        precision = precision_option(self.name, self.options, ("fp32", "fp16"))
        provider = self.options.get("provider")
        if provider not in (None, "tensorrt"):
            raise EngineError(f"onnxruntime backend: provider must be 'tensorrt' or unset, got {provider!r}")
        available = ort.get_available_providers()
        if self.device == "cpu":
            if provider is not None:
                raise EngineError("onnxruntime backend: the tensorrt provider needs device 'cuda'")
            if precision != "fp32":
                raise EngineError("onnxruntime backend: on the CPU it runs the model in its own types; use fp32")
            return [CPU_EP]
        match = _CUDA_DEVICE.fullmatch(self.device)
        if match is None:
            raise BackendUnavailable(
                self.name, f"device {self.device!r} is not supported; it runs on: cpu, cuda, cuda:N"
            )
        if CUDA_EP not in available:
            raise BackendUnavailable(
                self.name, f"{CUDA_EP} is not available: this is the CPU build of onnxruntime", hint=GPU_HINT
            )
        devices, reason = cuda_devices()
        device_id = int(match.group(1) or 0)
        if not devices:
            raise BackendUnavailable(self.name, reason)
        if device_id >= len(devices):
            raise BackendUnavailable(self.name, f"no CUDA device {device_id}: this worker has {len(devices)}")
        _preload_gpu_libraries(tensorrt=provider == "tensorrt")
        cuda = (CUDA_EP, {"device_id": device_id})
        if provider is None:
            if precision != "fp32":
                raise EngineError("onnxruntime backend: fp16 needs the tensorrt provider (options.provider)")
            return [cuda, CPU_EP]
        if TENSORRT_EP not in available:
            raise BackendUnavailable(
                self.name, f"{TENSORRT_EP} is not available in this onnxruntime build", hint="pip install tensorrt"
            )
        cache = str(self.options.get("cache_dir") or default_cache_dir("ort-tensorrt"))
        os.makedirs(cache, exist_ok=True)
        self._precision = precision
        trt_options = {
            "device_id": device_id,
            "trt_fp16_enable": precision == "fp16",
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": cache,
            "trt_timing_cache_enable": True,
            "trt_timing_cache_path": cache,
        }
        return [(TENSORRT_EP, trt_options), cuda, CPU_EP]

    def _create_session(self, providers: list[Any]) -> ort.InferenceSession:
        opts = ort.SessionOptions()
        # Warnings such as "unused initializer" would flood the worker log.
        opts.log_severity_level = 3
        for key in ("intra_op_num_threads", "inter_op_num_threads"):
            value = int_option(self.name, self.options, key)
            if value is not None:
                setattr(opts, key, value)
        spinning = self.options.get("allow_spinning")
        if spinning is not None:
            if not isinstance(spinning, bool):
                raise EngineError(f"onnxruntime backend: allow_spinning must be true or false, got {spinning!r}")
            for pool in ("intra_op", "inter_op"):
                opts.add_session_config_entry(f"session.{pool}.allow_spinning", "1" if spinning else "0")
        level = self.options.get("graph_optimization_level")
        if level is not None:
            if level not in _OPT_LEVELS:
                raise EngineError(f"graph_optimization_level must be one of {', '.join(_OPT_LEVELS)}, got {level!r}")
            opts.graph_optimization_level = _OPT_LEVELS[level]
        try:
            return ort.InferenceSession(self.spec.path, sess_options=opts, providers=providers)
        except ort_errors.NoSuchFile as exc:
            # The file should have been fetched to this worker; another try may find it.
            raise EngineError("the model file is missing on the worker", permanent=False) from exc
        except _MODEL_ERRORS as exc:
            raise InvalidArtifact(f"ONNX Runtime cannot load the model: {self._clean(exc)}") from exc
        except Exception as exc:  # RuntimeException, EPFail, out of memory: maybe not the model's fault
            raise EngineError(f"ONNX Runtime failed to load the model: {self._clean(exc)}", permanent=False) from exc

    def predict(self, inputs: dict[str, Array]) -> dict[str, Array]:
        run = self._run
        if run is None:
            raise EngineError("onnxruntime backend: predict() called before load()", permanent=False)
        try:
            values = run(self._output_names, inputs, None)
        except Exception as exc:
            raise self._run_error(exc, inputs) from exc
        return self._pack(values)

    def predict_batches(self, inputs: dict[str, Array], batch_size: int) -> dict[str, Array]:
        """Every batch through the bound run, outputs named once at the end (see :meth:`Backend.predict_batches`).

        At batch 1 each output row goes straight into its place in the final
        array, as long as every call returns the first call's shapes; a model
        whose outputs change shape from row to row is collected per call and
        concatenated instead, as :meth:`predict` would be.
        """
        run = self._run
        if run is None:
            raise EngineError("onnxruntime backend: predict() called before load()", permanent=False)
        if not self._tensor_outputs or len(inputs) != 1:  # maps need naming per call; several inputs, a dict each
            return super().predict_batches(inputs, batch_size)
        ((name, values),) = inputs.items()
        if batch_size == 1 and len(values) > 1:
            rows = self._row_by_row(run, name, values)
            if rows is not None:
                return self._pack(rows)
        names = self._output_names
        parts: list[list[Array]] = []
        append = parts.append
        lo = 0
        try:
            for lo in range(0, len(values), batch_size):
                append(run(names, {name: values[lo : lo + batch_size]}, None))
        except Exception as exc:
            raise self._run_error(exc, {name: values[lo : lo + batch_size]}) from exc
        if len(parts) == 1:
            return self._pack(parts[0])
        return self._pack([np.concatenate([part[i] for part in parts]) for i in range(len(names))])

    def _row_by_row(self, run: Callable[..., list[Any]], name: str, values: Array) -> list[Array] | None:
        """Batch 1: one call per row, each output row written into a preallocated array.

        ``None`` when an output's shape is not (1, ...) or changes between
        rows: the caller then collects whole outputs instead.
        """
        names = self._output_names
        i = 0
        try:
            first = run(names, {name: values[0:1]}, None)
            shapes = [out.shape for out in first]
            if any(not shape or shape[0] != 1 for shape in shapes):
                return None
            columns = [np.empty((len(values), *out.shape[1:]), dtype=out.dtype) for out in first]
            for column, out in zip(columns, first, strict=True):
                column[0] = out[0]
            if len(columns) == 2:  # a classifier's label and probabilities: unrolled
                (c0, c1), (s0, s1) = columns, shapes
                for i in range(1, len(values)):
                    o0, o1 = run(names, {name: values[i : i + 1]}, None)
                    if o0.shape != s0 or o1.shape != s1:
                        return None
                    c0[i] = o0[0]
                    c1[i] = o1[0]
            else:
                for i in range(1, len(values)):
                    outs = run(names, {name: values[i : i + 1]}, None)
                    for column, out, shape in zip(columns, outs, shapes, strict=True):
                        if out.shape != shape:
                            return None
                        column[i] = out[0]
        except Exception as exc:
            raise self._run_error(exc, {name: values[i : i + 1]}) from exc
        return columns

    def _run_error(self, exc: Exception, inputs: dict[str, Array]) -> EngineError:
        # Only on failure: the checks InferenceSession.run would do up front.
        expected = [s.name for s in self._inputs or ()]
        missing = [name for name in expected if name not in inputs]
        if missing:
            return EngineError(
                f"ONNX Runtime failed to run the model: missing inputs {', '.join(missing)} "
                f"(the model takes {', '.join(expected)}; got {', '.join(map(str, inputs)) or 'none'})"
            )
        permanent = isinstance(exc, (*_MODEL_ERRORS, ort_errors.RuntimeException, TypeError, ValueError))
        return EngineError(f"ONNX Runtime failed to run the model: {self._clean(exc)}", permanent=permanent)

    def unload(self) -> None:
        self._session = None
        self._run = None
        self._inputs = self._outputs = None
        self._output_names = []

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "version": ort.__version__,
            "provider": self._provider or (CPU_EP if self.device == "cpu" else CUDA_EP),
            "device": self.device,
            "precision": self._precision or "fp32",
        }

    def _clean(self, exc: BaseException) -> str:
        return clean_message(_ORT_PREFIX.sub("", str(exc).strip()), self.spec.path) or type(exc).__name__


def _spec(arg: Any) -> TensorSpec:
    match = _TENSOR_TYPE.fullmatch(arg.type)
    dtype = _ORT_DTYPES.get(match.group(1), match.group(1)) if match else arg.type
    shape: tuple[Dim, ...] | None = None
    if match and arg.shape is not None:
        shape = tuple(d if isinstance(d, (int, str)) else None for d in arg.shape)
    return TensorSpec(arg.name, dtype, shape)


def _preload_gpu_libraries(*, tensorrt: bool) -> None:
    """Load the CUDA, cuDNN and TensorRT libraries that pip installed outside the loader's search path.

    The nvidia-* and tensorrt wheels put their shared libraries in
    site-packages, where ONNX Runtime's providers do not look; once loaded
    into the process by soname they are found. Missing ones are left for the
    provider to report.
    """
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        # Best effort: creating the session reports whatever is really missing.
        with contextlib.suppress(Exception):
            preload()
    if tensorrt:
        with contextlib.suppress(ImportError):
            import tensorrt as _trt  # noqa: F401  (importing it loads libnvinfer)


def _public_run(session: ort.InferenceSession) -> Callable[..., list[Any]]:
    def run(names: list[str], feed: dict[str, Any], options: Any) -> list[Any]:
        return list(session.run(names, feed, options))

    return run


def _packer(
    names: list[str], *, tensors: bool, keys: dict[str, tuple[Any, ...]] | None = None
) -> Callable[[list[Any]], dict[str, Array]]:
    """Build the function that names a run's outputs; chosen once per model because it runs on every call.

    ONNX Runtime returns fresh numpy arrays for tensor outputs, so they are
    passed through; literal dicts for one or two outputs (a classifier's
    label and probabilities) cost a fraction of ``dict(zip(...))``. A map
    output's column classes go into ``keys``.
    """
    if not tensors:
        found = {} if keys is None else keys
        return lambda values: {name: _as_array(v, name, found) for name, v in zip(names, values, strict=True)}
    if len(names) == 1:
        (first,) = names
        return lambda values: {first: values[0]}
    if len(names) == 2:
        first, second = names
        return lambda values: {first: values[0], second: values[1]}
    pairs = tuple(enumerate(names))
    return lambda values: {name: values[i] for i, name in pairs}


def _as_array(value: Any, name: str, keys: dict[str, tuple[Any, ...]]) -> Array:
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, list) and value and isinstance(value[0], dict):
        # A ZipMap output: one {class: probability} dict per row. ONNX Runtime
        # orders a map's keys by value, not in the classifier's declared
        # order, so the columns are named: the first batch fixes the order
        # and every later one is read by the same keys.
        order = keys.get(name)
        if order is None:
            order = keys[name] = tuple(value[0])
        return np.array([[row[k] for k in order] for row in value], dtype=np.float32)
    return np.asarray(value)
