"""TFLite backend: ``.tflite`` models on the CPU with LiteRT (the ai-edge-litert package).

Options
-------
precision:
    ``"fp32"`` only: LiteRT runs a model in the types it was converted to
    (float, or int8 for a quantised model), which :meth:`describe` reports.
threads:
    Interpreter threads (default: LiteRT's, one).
xnnpack:
    ``True`` (default) lets LiteRT apply its XNNPACK CPU delegate; ``False``
    runs the reference kernels only.

Inputs with a dynamic batch (``-1`` in the shape signature) are resized to
each batch; the tensors are reallocated only when the shape changes.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, ClassVar

from workers.engine.errors import BackendUnavailable, EngineError, InvalidArtifact
from workers.engine.formats.tflite import TFLITE_IDENTIFIER, tflite_tensor_spec
from workers.engine.inference._common import clean_message, dtype_precision, int_option, precision_option
from workers.engine.inference.base import Backend
from workers.engine.types import ModelSpec

if TYPE_CHECKING:
    from workers.engine.arrays import Array

try:
    import ai_edge_litert
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
except ImportError as _exc:  # the registry turns this into BackendUnavailable with the hint
    raise ImportError(f"ai-edge-litert is not installed ({_exc})") from _exc

__all__ = ["TfLiteBackend"]


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("ai-edge-litert")
    except Exception:  # metadata missing in an odd install: the version is informative only
        return str(getattr(ai_edge_litert, "__version__", "unknown"))


class TfLiteBackend(Backend):
    """Run TFLite flatbuffer models with the LiteRT interpreter.

    Parameters
    ----------
    spec:
        A ``.tflite`` file.
    device:
        ``"cpu"`` only.
    options:
        ``precision``, ``threads``, ``xnnpack`` (see the module docstring).
    """

    name: ClassVar[str] = "tflite"
    pip_hint: ClassVar[str] = "pip install ai-edge-litert"
    formats: ClassVar[tuple[str, ...]] = ("tflite",)
    option_names: ClassVar[frozenset[str]] = frozenset({"precision", "threads", "xnnpack"})

    def __init__(self, spec: ModelSpec, *, device: str = "cpu", options: dict[str, Any] | None = None) -> None:
        super().__init__(spec, device=device, options=options)
        self._interpreter: Any = None
        self._input_index: dict[str, int] = {}
        self._input_shapes: dict[int, tuple[int, ...]] = {}
        self._output_index: list[tuple[str, int]] = []
        self._precision = ""

    @classmethod
    def probe(cls) -> dict[str, Any]:
        return {"version": _version(), "devices": ["cpu"], "precisions": ["fp32"], "formats": list(cls.formats)}

    def load(self) -> None:
        if self._interpreter is not None:
            return
        if self.device != "cpu":
            raise BackendUnavailable(self.name, f"device {self.device!r} is not supported; it runs on: cpu")
        precision_option(self.name, self.options, ("fp32",))
        threads = int_option(self.name, self.options, "threads", minimum=1)
        xnnpack = self.options.get("xnnpack", True)
        if not isinstance(xnnpack, bool):
            raise EngineError("tflite backend: xnnpack must be true or false")
        if not os.path.exists(self.spec.path):
            # The file should have been fetched to this worker; another try may find it.
            raise EngineError("the model file is missing on the worker", permanent=False)
        with open(self.spec.path, "rb") as fh:
            head = fh.read(8)
        if head[4:8] != TFLITE_IDENTIFIER:
            raise InvalidArtifact(
                f"not a TFLite model: the file identifier is {head[4:8]!r}, not {TFLITE_IDENTIFIER!r}"
            )
        resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            interpreter = Interpreter(
                model_path=self.spec.path, num_threads=threads, experimental_op_resolver_type=resolver
            )
            interpreter.allocate_tensors()
        except ValueError as exc:
            raise InvalidArtifact(f"the TFLite model is truncated or corrupt: {self._clean(exc)}") from exc
        except RuntimeError as exc:
            raise InvalidArtifact(f"the TFLite runtime cannot prepare the model: {self._clean(exc)}") from exc
        inputs = interpreter.get_input_details()
        outputs = interpreter.get_output_details()
        self._inputs = tuple(tflite_tensor_spec(d) for d in inputs)
        self._outputs = tuple(tflite_tensor_spec(d) for d in outputs)
        self._input_index = {str(d["name"]): int(d["index"]) for d in inputs}
        self._input_shapes = {int(d["index"]): tuple(int(n) for n in d["shape"]) for d in inputs}
        self._output_index = [(str(d["name"]), int(d["index"])) for d in outputs]
        self._precision = dtype_precision(s.dtype for s in self._inputs + self._outputs)
        self._interpreter = interpreter

    def predict(self, inputs: dict[str, Array]) -> dict[str, Array]:
        interpreter = self._interpreter
        if interpreter is None:
            raise EngineError("tflite backend: predict() called before load()", permanent=False)
        try:
            feeds = [(self._input_index[name], array) for name, array in inputs.items()]
        except KeyError as exc:
            raise EngineError(
                f"tflite backend: unknown input {exc.args[0]!r}; the model takes {', '.join(self._input_index)}"
            ) from None
        try:
            resized = False
            for index, array in feeds:
                if array.shape != self._input_shapes[index]:
                    interpreter.resize_tensor_input(index, array.shape, strict=True)
                    self._input_shapes[index] = array.shape
                    resized = True
            if resized:
                interpreter.allocate_tensors()
            for index, array in feeds:
                interpreter.set_tensor(index, array)
            interpreter.invoke()
            # get_tensor copies: the interpreter reuses its buffers on the next call.
            return {name: interpreter.get_tensor(index) for name, index in self._output_index}
        except (ValueError, RuntimeError) as exc:
            # A failed resize leaves the shapes unknown: start from scratch next time.
            self._input_shapes = {index: () for index in self._input_shapes}
            raise EngineError(f"LiteRT failed to run the model: {self._clean(exc)}") from exc

    def unload(self) -> None:
        self._interpreter = None
        self._inputs = self._outputs = None

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "version": _version(),
            "provider": "LiteRT interpreter" + (" + XNNPACK" if self.options.get("xnnpack", True) else ""),
            "device": self.device,
            "precision": self._precision or "fp32",
        }

    def _clean(self, exc: BaseException) -> str:
        return clean_message(exc, self.spec.path)
