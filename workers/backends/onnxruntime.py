"""ONNX Runtime backend (CPU execution provider).

Options
-------
intra_op_num_threads:
    Threads used inside one operator; unset leaves ONNX Runtime's default
    (one per physical core).
inter_op_num_threads:
    Threads used to run independent operators in parallel; unset leaves the
    default.
graph_optimization_level:
    ``"disable"``, ``"basic"``, ``"extended"`` or ``"all"`` (the default).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, ClassVar

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

from workers.backends.base import Backend
from workers.engine.errors import BackendUnavailable, EngineError, InvalidArtifact
from workers.engine.types import Dim, ModelSpec, TensorSpec

__all__ = ["OnnxRuntimeBackend"]

_PROVIDERS: dict[str, str] = {"cpu": "CPUExecutionProvider"}

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

# Errors that mean "this model (or this input) is wrong", not "try again".
_MODEL_ERRORS = (
    ort_errors.InvalidProtobuf,
    ort_errors.InvalidGraph,
    ort_errors.NotImplemented,
    ort_errors.InvalidArgument,
    ort_errors.Fail,
)


class OnnxRuntimeBackend(Backend):
    """Run ONNX models with ONNX Runtime's CPU execution provider.

    Parameters
    ----------
    spec:
        An ONNX model file.
    device:
        Only ``"cpu"`` for now.
    options:
        ``intra_op_num_threads``, ``inter_op_num_threads``,
        ``graph_optimization_level`` (see the module docstring).
    """

    name: ClassVar[str] = "onnxruntime"
    pip_hint: ClassVar[str] = "pip install onnxruntime"
    option_names: ClassVar[frozenset[str]] = frozenset(
        {"intra_op_num_threads", "inter_op_num_threads", "graph_optimization_level"}
    )

    def __init__(self, spec: ModelSpec, *, device: str = "cpu", options: dict[str, Any] | None = None) -> None:
        super().__init__(spec, device=device, options=options)
        self._session: ort.InferenceSession | None = None
        self._output_names: list[str] = []
        self._provider = ""

    @classmethod
    def supports(cls, spec: ModelSpec) -> bool:
        return spec.format == "onnx"

    @classmethod
    def probe(cls) -> dict[str, Any]:
        available = set(ort.get_available_providers())
        return {"version": ort.__version__, "devices": [d for d, p in _PROVIDERS.items() if p in available]}

    def load(self) -> None:
        if self._session is not None:
            return
        provider = _PROVIDERS.get(self.device)
        if provider is None or provider not in ort.get_available_providers():
            raise BackendUnavailable(
                self.name, f"device {self.device!r} is not supported; it runs on: {', '.join(_PROVIDERS)}"
            )
        session = self._create_session(provider)
        self._inputs = tuple(_spec(a) for a in session.get_inputs())
        self._outputs = tuple(_spec(a) for a in session.get_outputs())
        self._output_names = [o.name for o in self._outputs]
        self._provider = provider
        self._session = session

    def _create_session(self, provider: str) -> ort.InferenceSession:
        opts = ort.SessionOptions()
        # Warnings such as "unused initializer" would flood the worker log.
        opts.log_severity_level = 3
        for key in ("intra_op_num_threads", "inter_op_num_threads"):
            if self.options.get(key) is not None:
                value = self.options[key]
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise EngineError(f"{key} must be a non-negative integer, got {value!r}")
                setattr(opts, key, value)
        level = self.options.get("graph_optimization_level")
        if level is not None:
            if level not in _OPT_LEVELS:
                raise EngineError(f"graph_optimization_level must be one of {', '.join(_OPT_LEVELS)}, got {level!r}")
            opts.graph_optimization_level = _OPT_LEVELS[level]
        try:
            return ort.InferenceSession(self.spec.path, sess_options=opts, providers=[provider])
        except ort_errors.NoSuchFile as exc:
            # The file should have been fetched to this worker; another try may find it.
            raise EngineError("the model file is missing on the worker", permanent=False) from exc
        except _MODEL_ERRORS as exc:
            raise InvalidArtifact(f"ONNX Runtime cannot load the model: {self._clean(exc)}") from exc
        except Exception as exc:  # RuntimeException, EPFail, out of memory: maybe not the model's fault
            raise EngineError(f"ONNX Runtime failed to load the model: {self._clean(exc)}", permanent=False) from exc

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        session = self._session
        if session is None:
            raise EngineError("onnxruntime backend: predict() called before load()", permanent=False)
        try:
            values = session.run(self._output_names, inputs)
        except (*_MODEL_ERRORS, ort_errors.RuntimeException) as exc:
            raise EngineError(f"ONNX Runtime failed to run the model: {self._clean(exc)}") from exc
        except Exception as exc:
            raise EngineError(f"ONNX Runtime failed to run the model: {self._clean(exc)}", permanent=False) from exc
        return {name: _as_array(value) for name, value in zip(self._output_names, values, strict=True)}

    def unload(self) -> None:
        self._session = None
        self._inputs = self._outputs = None
        self._output_names = []

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "version": ort.__version__,
            "provider": self._provider or _PROVIDERS.get(self.device, ""),
            "device": self.device,
            "precision": self._precision(),
        }

    def _precision(self) -> str:
        # ONNX Runtime on CPU computes in the model's own types, so the
        # precision is that of its floating-point tensors.
        specs = (self._inputs or ()) + (self._outputs or ())
        floats = Counter(s.dtype for s in specs if s.dtype.startswith(("float", "bfloat")))
        return floats.most_common(1)[0][0] if floats else "native"

    def _clean(self, exc: BaseException) -> str:
        text = _ORT_PREFIX.sub("", str(exc).strip())
        # The worker's local path means nothing to the user.
        text = " ".join(text.replace(self.spec.path, "<model>").split())
        return _shorten(text) if text else type(exc).__name__


def _shorten(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _spec(arg: Any) -> TensorSpec:
    match = _TENSOR_TYPE.fullmatch(arg.type)
    dtype = _ORT_DTYPES.get(match.group(1), match.group(1)) if match else arg.type
    shape: tuple[Dim, ...] | None = None
    if match and arg.shape is not None:
        shape = tuple(d if isinstance(d, (int, str)) else None for d in arg.shape)
    return TensorSpec(arg.name, dtype, shape)


def _as_array(value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, list) and value and isinstance(value[0], dict):
        # A ZipMap output: one {class: probability} dict per row, all with the
        # same keys in the classifier's label order.
        keys = list(value[0])
        return np.array([[row[k] for k in keys] for row in value], dtype=np.float32)
    return np.asarray(value)
