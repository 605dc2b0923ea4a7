"""OpenVINO backend: ONNX files read directly, and OpenVINO IR (``.xml`` graph + ``.bin`` weights).

Devices
-------
``"cpu"``, ``"gpu"`` (or ``"gpu.N"``), ``"npu"`` and ``"auto"`` map to the
OpenVINO device plugins of the same name where this worker has them; for
``"auto"`` OpenVINO picks one and :meth:`OpenVinoBackend.describe` reports
which.

Options
-------
precision:
    ``"fp32"`` (default) or ``"fp16"`` where the device computes in it: the
    inference precision hint. It is always set, because OpenVINO would
    otherwise choose bf16 on CPUs with AMX and results would depend on the
    worker's CPU.
threads:
    ``INFERENCE_NUM_THREADS`` of the CPU plugin; unset leaves OpenVINO's
    default (all cores).
performance_hint:
    ``"latency"`` (OpenVINO's default for the CPU) or ``"throughput"``.
"""

from __future__ import annotations

import os
import re
from typing import Any, ClassVar

import numpy as np
import openvino as ov
from openvino._pyopenvino import InferRequest as _RequestBase  # the binding under the public wrapper

from workers.engine.arrays import Array
from workers.engine.errors import BackendUnavailable, EngineError, InvalidArtifact
from workers.engine.formats.openvino_ir import port_spec
from workers.engine.inference._common import (
    clean_message,
    int_option,
    onnx_op_types,
    precision_option,
    unsupported_operators,
    unsupported_operators_error,
)
from workers.engine.inference.base import Backend
from workers.engine.types import ModelSpec

#: Inputs up to this size are copied into the request's tensor; larger ones are shared.
SHARE_INPUT_BYTES = 1 << 16

__all__ = ["OpenVinoBackend"]

_DEVICE = re.compile(r"(cpu|gpu|npu|auto)(?:\.(\d+))?")
_PRECISION_TYPES: dict[str, Any] = {"fp32": ov.Type.f32, "fp16": ov.Type.f16}
_TYPE_PRECISIONS: dict[str, str] = {"f32": "fp32", "f16": "fp16", "bf16": "bf16", "float32": "fp32", "float16": "fp16"}
# Device capabilities (OPTIMIZATION_CAPABILITIES) -> precisions the hint can ask for.
_CAPABILITIES: dict[str, str] = {"FP32": "fp32", "FP16": "fp16"}
_HINTS: dict[str, Any] = {
    "latency": ov.properties.hint.PerformanceMode.LATENCY,
    "throughput": ov.properties.hint.PerformanceMode.THROUGHPUT,
}
# OpenVINO's ONNX frontend lists what it could not convert in one line.
_UNCONVERTED = re.compile(r"No conversion rule found for operations:\s*([^\n]+)")
# Source locations of the C++ checks: noise to the user.
_NOISE = re.compile(r"^(Exception from |Check '.*' failed at |FrontEnd API failed with )")


class OpenVinoBackend(Backend):
    """Run ONNX and OpenVINO IR models with OpenVINO Runtime.

    Parameters
    ----------
    spec:
        An ONNX file, or an OpenVINO IR ``.xml`` with ``weights_path`` naming its ``.bin``.
    device:
        ``"cpu"``, ``"gpu"``, ``"gpu.N"``, ``"npu"`` or ``"auto"``.
    options:
        ``precision``, ``threads``, ``performance_hint`` (see the module docstring).

    Notes
    -----
    One ``InferRequest`` is created at load and reused by every
    :meth:`predict`: inputs are bound as tensors that share the caller's
    arrays (no copy, no per-call data dispatching as in
    ``InferRequest.infer(dict)``), and outputs are copied out of the
    request's buffers.
    OpenVINO cannot run ONNX-ML operators (scikit-learn models); loading
    such a model raises a permanent :class:`EngineError` naming them.
    """

    name: ClassVar[str] = "openvino"
    pip_hint: ClassVar[str] = "pip install openvino"
    formats: ClassVar[tuple[str, ...]] = ("onnx", "openvino")
    option_names: ClassVar[frozenset[str]] = frozenset({"precision", "threads", "performance_hint"})

    def __init__(self, spec: ModelSpec, *, device: str = "cpu", options: dict[str, Any] | None = None) -> None:
        super().__init__(spec, device=device, options=options)
        self._compiled: Any = None
        self._request: Any = None
        self._feeds: dict[str, tuple[int, np.dtype[Any]]] = {}
        self._fetches: tuple[tuple[str, int], ...] = ()
        self._execution_devices: list[str] = []
        self._precision = ""

    @classmethod
    def probe(cls) -> dict[str, Any]:
        core = ov.Core()
        available = core.available_devices
        if not available:
            raise BackendUnavailable(cls.name, "OpenVINO found no device plugin that can run here")
        devices: list[str] = []
        precisions: set[str] = set()
        for full in available:
            plugin = full.split(".")[0].lower()
            if plugin not in devices:
                devices.append(plugin)
            try:
                capabilities = core.get_property(full, "OPTIMIZATION_CAPABILITIES")
            except RuntimeError:
                capabilities = ["FP32"]
            precisions.update(_CAPABILITIES[c] for c in capabilities if c in _CAPABILITIES)
        devices.append("auto")
        return {
            "version": ov.__version__,
            "devices": devices,
            "precisions": [p for p in ("fp32", "fp16") if p in precisions],
            "formats": list(cls.formats),
        }

    def load(self) -> None:
        if self._request is not None:
            return
        core = ov.Core()
        target = self._target(core)
        config = self._config(core, target)
        model = self._read(core)
        try:
            compiled = core.compile_model(model, target, config)
            request = compiled.create_infer_request()
        except RuntimeError as exc:
            raise EngineError(f"OpenVINO cannot compile the model for {target}: {self._clean(exc)}") from exc
        inputs = tuple(port_spec(port) for port in compiled.inputs)
        feeds: dict[str, tuple[int, np.dtype[Any]]] = {}
        for index, port in enumerate(compiled.inputs):
            dtype = np.dtype(port.get_element_type().to_dtype())
            # Every tensor name of a port is accepted, as OpenVINO itself does.
            for name in port.get_names() or {inputs[index].name}:
                feeds[name] = (index, dtype)
        self._execution_devices = list(compiled.get_property("EXECUTION_DEVICES"))
        try:
            hint = compiled.get_property("INFERENCE_PRECISION_HINT")
            self._precision = _TYPE_PRECISIONS.get(hint.get_type_name(), hint.get_type_name())
        except RuntimeError:  # AUTO does not report it; the hint passed on is what ran
            pass
        self._inputs = inputs
        self._outputs = tuple(port_spec(port) for port in compiled.outputs)
        self._feeds = feeds
        self._fetches = tuple((spec.name, index) for index, spec in enumerate(self._outputs))
        self._compiled = compiled
        self._request = request
        self._in_tensors: list[Any] = [None] * len(inputs)
        # numpy views of those tensors' memory, made once: ``Tensor.data`` builds a new view per call.
        # A placeholder until its input's first call sets the shape (and with it the view).
        self._in_views: list[Array] = [np.empty(0)] * len(inputs)
        self._in_shapes: list[tuple[int, ...] | None] = [None] * len(inputs)
        self._out_names = [name for name, _ in self._fetches]

    def _target(self, core: Any) -> str:
        match = _DEVICE.fullmatch(self.device)
        if match is None:
            raise BackendUnavailable(
                self.name, f"device {self.device!r} is not supported; it runs on: cpu, gpu, gpu.N, npu, auto"
            )
        target = self.device.upper()
        if target == "AUTO":
            return target
        available = core.available_devices
        if target not in available and not any(d.split(".")[0] == target for d in available):
            raise BackendUnavailable(
                self.name, f"no OpenVINO {target} device on this worker (available: {', '.join(available)})"
            )
        return target

    def _config(self, core: Any, target: str) -> dict[str, Any]:
        precision = precision_option(self.name, self.options, _PRECISION_TYPES)
        if precision != "fp32" and target != "AUTO":
            capabilities = core.get_property(target, "OPTIMIZATION_CAPABILITIES")
            if precision.upper() not in capabilities:
                raise EngineError(
                    f"openvino backend: the {target} device computes in {', '.join(capabilities)}, not {precision}"
                )
        self._precision = precision
        config: dict[str, Any] = {ov.properties.hint.inference_precision: _PRECISION_TYPES[precision]}
        threads = int_option(self.name, self.options, "threads", minimum=1)
        if threads is not None:
            config[ov.properties.inference_num_threads] = threads
        hint = self.options.get("performance_hint")
        if hint is not None:
            if hint not in _HINTS:
                raise EngineError(f"openvino backend: performance_hint must be one of {', '.join(_HINTS)}")
            config[ov.properties.hint.performance_mode] = _HINTS[hint]
        return config

    def _read(self, core: Any) -> Any:
        spec = self.spec
        paths = [spec.path] + ([spec.weights_path] if spec.weights_path else [])
        for path in paths:
            if not os.path.exists(path):
                # The file should have been fetched to this worker; another try may find it.
                raise EngineError("the model file is missing on the worker", permanent=False)
        if spec.format == "openvino" and not spec.weights_path:
            raise InvalidArtifact("an OpenVINO IR model needs its .bin weights file besides the .xml")
        try:
            if spec.format == "openvino":
                return core.read_model(spec.path, spec.weights_path)
            return core.read_model(spec.path)
        except RuntimeError as exc:
            text = str(exc)
            if spec.format == "onnx":
                ops = self._unconverted(text)
                if ops:
                    raise unsupported_operators_error(self.name, ops) from exc
            raise InvalidArtifact(f"OpenVINO cannot read the model: {self._clean(exc)}") from exc

    def _unconverted(self, text: str) -> list[str]:
        """The operators OpenVINO cannot run, named as in the ONNX graph ("domain:OpType").

        OpenVINO lists the operators it has no conversion for; but some
        models fail before that list is made (a ZipMap's sequence-of-maps
        output is refused as an "unsupported value_info type"). Then the
        operators outside the standard ONNX domain, which OpenVINO does not
        implement, are the ones to name.
        """
        try:
            graph_ops = onnx_op_types(self.spec.path)
        except EngineError:
            return []  # not readable as ONNX at all: the caller reports OpenVINO's own message
        match = _UNCONVERTED.search(text)
        if match is None:
            return unsupported_operators(self.spec.path)
        by_name = {op.replace(":", "."): op for op in graph_ops}
        by_name.update({op.removeprefix("ai.onnx:"): op for op in graph_ops if op.startswith("ai.onnx:")})
        return [by_name.get(n.strip(), n.strip()) for n in match.group(1).split(",") if n.strip()]

    def predict(self, inputs: dict[str, Array]) -> dict[str, Array]:
        request = self._request
        if request is None:
            raise EngineError("openvino backend: predict() called before load()", permanent=False)
        if len(inputs) != len(self._inputs or ()):
            # A request keeps the tensors of the previous call: an input left
            # out would silently reuse old data.
            raise self._input_error(inputs)
        try:
            for name, array in inputs.items():
                index, dtype = self._feeds[name]
                if type(array) is not Array or array.dtype != dtype or not _shareable(array.flags):
                    # OpenVINO shares only C-ordered, writeable memory of the model's type.
                    array = np.array(array, dtype=dtype, order="C")
                if array.nbytes > SHARE_INPUT_BYTES:
                    # Large inputs: zero-copy, the request reads the caller's array in place.
                    request.set_input_tensor(index, ov.Tensor(array, shared_memory=True))
                    self._in_shapes[index] = None
                    continue
                # Small inputs: copying into the request's own tensor is cheaper than
                # wrapping a new shared tensor on every call (~13 µs per input).
                if self._in_shapes[index] != array.shape:
                    # A tensor of our own (ov.Tensor copies unless asked to share):
                    # never write into memory a caller lent for an earlier call.
                    tensor = ov.Tensor(array)
                    request.set_input_tensor(index, tensor)
                    self._in_tensors[index] = tensor
                    self._in_views[index] = tensor.data
                    self._in_shapes[index] = array.shape
                else:
                    np.copyto(self._in_views[index], array)
            # The binding's own infer(): the public wrapper adds ~8 µs of argument
            # dispatch per call. share_outputs=False returns fresh copies, as the
            # request reuses its output memory on the next call.
            results = _RequestBase.infer(request, {}, False, True)
            return dict(zip(self._out_names, results.values(), strict=True))
        except KeyError:
            raise self._input_error(inputs) from None
        except (RuntimeError, TypeError, ValueError) as exc:
            raise EngineError(f"OpenVINO failed to run the model: {self._clean(exc)}") from exc

    def runtime_latency_ns(self) -> int | None:
        """OpenVINO's own timing of the last inference, without any Python around it."""
        return int(self._request.latency * 1e6) if self._request is not None else None

    def _input_error(self, inputs: dict[str, Array]) -> EngineError:
        expected = [spec.name for spec in self._inputs or ()]
        return EngineError(
            f"openvino backend: the model takes inputs {', '.join(expected)}; got {', '.join(map(str, inputs)) or 'none'}"
        )

    def unload(self) -> None:
        self._request = None
        self._compiled = None
        self._inputs = self._outputs = None
        self._feeds, self._fetches = {}, ()
        self._in_tensors, self._in_views, self._in_shapes = [], [], []

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "version": ov.__version__,
            "provider": ",".join(self._execution_devices) or self.device.upper(),
            "device": self.device,
            "precision": self._precision or "fp32",
        }

    def _clean(self, exc: BaseException) -> str:
        lines = [line for line in str(exc).splitlines() if line.strip() and not _NOISE.match(line.strip())]
        return clean_message("\n".join(lines) or str(exc), self.spec.path, self.spec.weights_path)


def _shareable(flags: Any) -> bool:
    return bool(flags.c_contiguous and flags.writeable)
