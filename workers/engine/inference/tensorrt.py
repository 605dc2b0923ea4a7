"""TensorRT backend: a native TensorRT engine built from an ONNX model, FP32, FP16 or calibrated INT8.

Building an engine takes seconds to minutes, so built engines are cached on
disk under a name made of everything that makes one engine unusable for
another run: the model's SHA-256, the TensorRT version, the GPU name, the
precision and the largest batch of the optimisation profile
(:func:`engine_cache_path`). A cached engine that fails to deserialise is
rebuilt.

The module imports without TensorRT: :meth:`TensorRtBackend.probe` and
:meth:`TensorRtBackend.load` then raise :class:`BackendUnavailable` saying
``tensorrt is not installed``, so the registry can list the backend on any
worker. GPU memory is managed with the CUDA driver API (``libcuda``, part of
the NVIDIA driver) through :class:`workers.engine.inference._common.CudaDriver`, so no
CUDA Python package is needed besides ``tensorrt`` itself.

Options
-------
precision:
    ``"fp32"`` (default), ``"fp16"``, or ``"int8"``: INT8 needs either a
    model with QuantizeLinear/DequantizeLinear nodes (explicitly quantised)
    or ``calibration_data``.
calibration_data:
    A float array (or the path of a ``.npy`` file) of representative inputs
    for INT8 entropy calibration; single-input models only.
max_batch:
    Largest batch the engine accepts (default 64); larger batches are run in
    chunks of this size.
opt_batch:
    Batch size TensorRT tunes the kernels for (default ``max_batch``).
workspace_mb:
    Builder workspace limit in MiB (default 1024).
cache_dir:
    Engine cache folder (default: see
    :func:`workers.engine.inference._common.default_cache_dir`).
"""

from __future__ import annotations

import os
import re
import tempfile
from typing import Any, ClassVar

import numpy as np

from workers.engine.arrays import Array
from workers.engine.errors import BackendUnavailable, EngineError, InvalidArtifact
from workers.engine.inference._common import (
    CudaDriver,
    clean_message,
    cuda_devices,
    default_cache_dir,
    file_sha256,
    int_option,
    onnx_op_types,
    precision_option,
    slug,
    unsupported_operators,
    unsupported_operators_error,
)
from workers.engine.inference.base import Backend
from workers.engine.types import Dim, ModelSpec, TensorSpec

__all__ = ["TensorRtBackend", "engine_cache_path"]

INSTALL_HINT = "pip install evalsvc[gpu]"
_CUDA_DEVICE = re.compile(r"cuda(?::(\d+))?")
_QDQ = {"ai.onnx:QuantizeLinear", "ai.onnx:DequantizeLinear"}


def _import_tensorrt() -> Any:
    try:
        import tensorrt
    except ImportError as exc:
        raise BackendUnavailable("tensorrt", "tensorrt is not installed", hint=INSTALL_HINT) from exc
    return tensorrt


def engine_cache_path(
    cache_dir: str, *, sha256: str, trt_version: str, gpu_name: str, precision: str, max_batch: int
) -> str:
    """The file a built engine is cached in.

    Parameters
    ----------
    cache_dir:
        The cache folder.
    sha256:
        The ONNX model's SHA-256 (hex).
    trt_version, gpu_name, precision, max_batch:
        The rest of the key: an engine is specific to the TensorRT build,
        the GPU model, the precision and the optimisation profile.

    Returns
    -------
    str
        ``<cache_dir>/<sha256>_<GPU-name>_trt<version>_<precision>_b<max_batch>.engine``
    """
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise EngineError(f"tensorrt backend: the engine cache needs the model's SHA-256, got {sha256!r}")
    name = f"{sha256}_{slug(gpu_name)}_trt{slug(trt_version)}_{precision}_b{max_batch}.engine"
    return os.path.join(cache_dir, name)


class TensorRtBackend(Backend):
    """Run ONNX models as native TensorRT engines on an NVIDIA GPU.

    Parameters
    ----------
    spec:
        An ONNX model file.
    device:
        ``"cuda"`` or ``"cuda:N"``.
    options:
        ``precision``, ``calibration_data``, ``max_batch``, ``opt_batch``,
        ``workspace_mb``, ``cache_dir`` (see the module docstring).

    Notes
    -----
    Device buffers for the largest batch are allocated once at load and
    bound to the execution context; :meth:`predict` copies the inputs in,
    runs the engine on one stream and copies the outputs out. Models with
    operators outside the standard ONNX domain (scikit-learn's
    ``ai.onnx.ml``) are refused before building, naming the operators.
    """

    name: ClassVar[str] = "tensorrt"
    pip_hint: ClassVar[str] = INSTALL_HINT
    formats: ClassVar[tuple[str, ...]] = ("onnx",)
    option_names: ClassVar[frozenset[str]] = frozenset(
        {"precision", "calibration_data", "max_batch", "opt_batch", "workspace_mb", "cache_dir"}
    )

    def __init__(self, spec: ModelSpec, *, device: str = "cpu", options: dict[str, Any] | None = None) -> None:
        super().__init__(spec, device=device, options=options)
        self._trt: Any = None
        self._cuda: CudaDriver | None = None
        self._engine: Any = None
        self._context: Any = None
        self._keep: tuple[Any, ...] = ()
        self._max_batch = 64
        self._in: list[tuple[str, np.dtype[Any], int]] = []  # name, dtype, device pointer
        self._out: list[tuple[str, np.dtype[Any], int]] = []
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._out_shapes: dict[str, tuple[int, ...]] = {}
        self._precision = ""
        self._gpu = ""
        self.engine_path = ""
        #: Whether the last load found its engine in the cache.
        self.cache_hit = False

    @classmethod
    def probe(cls) -> dict[str, Any]:
        trt = _import_tensorrt()
        devices, reason = cuda_devices()
        if not devices:
            raise BackendUnavailable(cls.name, reason)
        # Every GPU TensorRT 10 supports has fast FP16; INT8 needs compute capability 6.1+.
        precisions = ["fp32", "fp16"]
        if any(tuple(int(n) for n in d["cc"].split(".")) >= (6, 1) for d in devices):
            precisions.append("int8")
        return {"version": trt.__version__, "devices": ["cuda"], "precisions": precisions, "formats": list(cls.formats)}

    # ------------------------------------------------------------------ load

    def load(self) -> None:
        if self._context is not None:
            return
        precision = precision_option(self.name, self.options, ("fp32", "fp16", "int8"))
        match = _CUDA_DEVICE.fullmatch(self.device)
        if match is None:
            raise BackendUnavailable(self.name, f"device {self.device!r} is not supported; it runs on: cuda, cuda:N")
        max_batch = int_option(self.name, self.options, "max_batch", minimum=1) or 64
        opt_batch = int_option(self.name, self.options, "opt_batch", minimum=1) or max_batch
        if opt_batch > max_batch:
            raise EngineError(f"tensorrt backend: opt_batch ({opt_batch}) cannot exceed max_batch ({max_batch})")
        trt = _import_tensorrt()
        devices, reason = cuda_devices()
        if not devices:
            raise BackendUnavailable(self.name, reason)
        ordinal = int(match.group(1) or 0)
        if ordinal >= len(devices):
            raise BackendUnavailable(self.name, f"no CUDA device {ordinal}: this worker has {len(devices)}")
        if not os.path.exists(self.spec.path):
            # The file should have been fetched to this worker; another try may find it.
            raise EngineError("the model file is missing on the worker", permanent=False)
        foreign = unsupported_operators(self.spec.path)
        if foreign:
            raise unsupported_operators_error(self.name, foreign)
        calibration = self._calibration_data() if precision == "int8" else None
        if precision == "int8" and calibration is None and not (_QDQ & set(onnx_op_types(self.spec.path))):
            raise EngineError(
                "tensorrt backend: int8 needs a calibrated model: upload a quantised (QDQ) ONNX model "
                "or pass calibration_data"
            )
        self._trt = trt
        self._gpu = devices[ordinal]["name"]
        self._max_batch = max_batch
        self._precision = precision
        cuda = CudaDriver(ordinal, backend=self.name)
        self._cuda = cuda
        try:
            self._engine = self._engine_from_cache_or_build(trt, precision, max_batch, opt_batch, calibration)
            self._context = self._engine.create_execution_context()
            if self._context is None:
                raise EngineError(
                    "TensorRT could not create an execution context (out of GPU memory?)", permanent=False
                )
            self._bind(trt)
        except BaseException:
            self.unload()
            raise

    def _calibration_data(self) -> Array | None:
        data = self.options.get("calibration_data")
        if data is None:
            return None
        if isinstance(data, str):
            try:
                data = np.load(data, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise EngineError(
                    f"tensorrt backend: cannot read calibration_data: {clean_message(exc, data)}"
                ) from exc
        if not isinstance(data, np.ndarray) or data.ndim < 1 or len(data) == 0:
            raise EngineError("tensorrt backend: calibration_data must be a non-empty array of model inputs")
        return np.ascontiguousarray(data, dtype=np.float32)

    def _engine_from_cache_or_build(
        self, trt: Any, precision: str, max_batch: int, opt_batch: int, calibration: Array | None
    ) -> Any:
        cache_dir = str(self.options.get("cache_dir") or default_cache_dir("tensorrt"))
        sha256 = self.spec.sha256 or file_sha256(self.spec.path)
        self.engine_path = engine_cache_path(
            cache_dir,
            sha256=sha256,
            trt_version=trt.__version__,
            gpu_name=self._gpu,
            precision=precision,
            max_batch=max_batch,
        )
        logger = _logger(trt)
        runtime = trt.Runtime(logger)
        # The engine must not outlive its runtime, nor the runtime its logger.
        self._keep = (logger, runtime)
        if os.path.exists(self.engine_path):
            with open(self.engine_path, "rb") as fh:
                engine = runtime.deserialize_cuda_engine(fh.read())
            if engine is not None:
                self.cache_hit = True
                return engine
            # A stale or damaged file: build again and overwrite it.
        serialized = self._build(trt, logger, precision, max_batch, opt_batch, calibration)
        os.makedirs(cache_dir, exist_ok=True)
        # Written beside the target and renamed, so a concurrent reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".part")
        with os.fdopen(fd, "wb") as fh:
            fh.write(serialized)
        os.replace(tmp, self.engine_path)
        self.cache_hit = False
        engine = runtime.deserialize_cuda_engine(serialized)
        if engine is None:
            raise EngineError(f"TensorRT could not load the engine it built: {logger.last_error()}", permanent=False)
        return engine

    def _build(
        self, trt: Any, logger: Any, precision: str, max_batch: int, opt_batch: int, calibration: Array | None
    ) -> bytes:
        builder = trt.Builder(logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(self.spec.path):
            errors = [_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]
            ops = sorted({op for _, op in errors if op})
            if ops:
                raise unsupported_operators_error(self.name, ops)
            text = "; ".join(e for e, _ in errors) or "unknown error"
            raise InvalidArtifact(f"TensorRT cannot parse the ONNX model: {clean_message(text, self.spec.path)}")
        config = builder.create_builder_config()
        workspace = int_option(self.name, self.options, "workspace_mb", minimum=16) or 1024
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace << 20)
        if precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        elif precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
            # Layers INT8 cannot serve fall back to FP16 rather than FP32.
            config.set_flag(trt.BuilderFlag.FP16)
        profile = builder.create_optimization_profile()
        for i in range(network.num_inputs):
            tensor = network.get_input(i)
            shape = tuple(tensor.shape)
            if any(d < 0 for d in shape[1:]):
                raise EngineError(
                    f"tensorrt backend: input {tensor.name!r} has dynamic dimensions besides the batch: {list(shape)}"
                )
            rest = shape[1:]
            if shape and shape[0] < 0:
                profile.set_shape(tensor.name, (1, *rest), (opt_batch, *rest), (max_batch, *rest))
            else:
                profile.set_shape(tensor.name, shape, shape, shape)
        config.add_optimization_profile(profile)
        if calibration is not None:
            if network.num_inputs != 1:
                raise EngineError("tensorrt backend: calibration_data works for single-input models only")
            config.int8_calibrator = _calibrator(trt, self._cuda, calibration, min(opt_batch, len(calibration)))
            if hasattr(config, "set_calibration_profile"):
                config.set_calibration_profile(profile)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise EngineError(f"TensorRT could not build an engine: {logger.last_error()}")
        return bytes(serialized)

    def _bind(self, trt: Any) -> None:
        engine, context, cuda = self._engine, self._context, self._cuda
        assert cuda is not None
        inputs: list[TensorSpec] = []
        outputs: list[TensorSpec] = []
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        for name in names:
            if engine.get_tensor_mode(name) != trt.TensorIOMode.INPUT:
                continue
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            declared = tuple(engine.get_tensor_shape(name))
            largest = tuple(engine.get_tensor_profile_shape(name, 0)[2])
            context.set_input_shape(name, largest)
            self._shapes[name] = largest
            ptr = cuda.alloc(int(np.prod(largest)) * dtype.itemsize)
            context.set_tensor_address(name, ptr)
            self._in.append((name, dtype, ptr))
            inputs.append(TensorSpec(name, dtype.name, _dims(declared)))
        for name in names:
            if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                continue
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            # With every input at its largest, each output is at its largest too.
            largest = tuple(context.get_tensor_shape(name))
            self._out_shapes[name] = largest
            ptr = cuda.alloc(int(np.prod(largest)) * dtype.itemsize)
            context.set_tensor_address(name, ptr)
            self._out.append((name, dtype, ptr))
            outputs.append(TensorSpec(name, dtype.name, _dims(tuple(engine.get_tensor_shape(name)))))
        self._inputs, self._outputs = tuple(inputs), tuple(outputs)

    # --------------------------------------------------------------- predict

    def predict(self, inputs: dict[str, Array]) -> dict[str, Array]:
        if self._context is None:
            raise EngineError("tensorrt backend: predict() called before load()", permanent=False)
        unknown = sorted(set(inputs) - {name for name, _, _ in self._in})
        if unknown:
            expected = ", ".join(name for name, _, _ in self._in)
            raise EngineError(f"tensorrt backend: unknown inputs {', '.join(unknown)}; the model takes {expected}")
        try:
            arrays = {name: np.ascontiguousarray(inputs[name], dtype=dtype) for name, dtype, _ in self._in}
        except KeyError as exc:
            raise EngineError(f"tensorrt backend: input {exc.args[0]!r} is missing") from None
        except (TypeError, ValueError) as exc:
            raise EngineError(f"tensorrt backend: an input cannot be converted to the model's type: {exc}") from exc
        batch = next(iter(arrays.values())).shape[0] if arrays else 0
        if batch <= self._max_batch:
            return self._run(arrays)
        # Larger than the optimisation profile: run it in profile-sized chunks.
        parts = [
            self._run({k: v[start : start + self._max_batch] for k, v in arrays.items()})
            for start in range(0, batch, self._max_batch)
        ]
        return {name: np.concatenate([p[name] for p in parts]) for name, _, _ in self._out}

    def _run(self, arrays: dict[str, Array]) -> dict[str, Array]:
        context, cuda = self._context, self._cuda
        assert cuda is not None
        cuda.make_current()
        changed = False
        for name, _, ptr in self._in:
            array = arrays[name]
            if array.shape != self._shapes.get(name):
                if not context.set_input_shape(name, array.shape):
                    raise EngineError(
                        f"tensorrt backend: input {name!r} of shape {list(array.shape)} does not fit the engine "
                        f"(it takes {list(self._inputs_shape(name))} with up to {self._max_batch} rows)"
                    )
                self._shapes[name] = array.shape
                changed = True
            cuda.to_device(ptr, array)
        if changed:
            self._out_shapes = {name: tuple(context.get_tensor_shape(name)) for name, _, _ in self._out}
        if not context.execute_async_v3(cuda.stream_handle):
            raise EngineError("TensorRT failed to run the model", permanent=False)
        results = {}
        for name, dtype, ptr in self._out:
            out = np.empty(self._out_shapes[name], dtype=dtype)
            cuda.to_host(out, ptr)
            results[name] = out
        # The copies are asynchronous: the arrays are complete only after this.
        cuda.synchronize()
        return results

    def _inputs_shape(self, name: str) -> tuple[Dim, ...]:
        for spec in self._inputs or ():
            if spec.name == name:
                return spec.shape or ()
        return ()

    def unload(self) -> None:
        self._context = None
        self._engine = None
        self._keep = ()
        if self._cuda is not None:
            self._cuda.close()
            self._cuda = None
        self._in, self._out = [], []
        self._shapes, self._out_shapes = {}, {}
        self._inputs = self._outputs = None

    def describe(self) -> dict[str, Any]:
        version = self._trt.__version__ if self._trt is not None else None
        return {
            "backend": self.name,
            "version": version,
            "provider": f"TensorRT on {self._gpu}" if self._gpu else "TensorRT",
            "device": self.device,
            "precision": self._precision or "fp32",
        }


def _dims(shape: tuple[int, ...]) -> tuple[Dim, ...]:
    return tuple(None if d < 0 else int(d) for d in shape)


def _parser_error(error: Any) -> tuple[str, str]:
    """(message, "domain:OpType" when the error is about an operator TensorRT lacks)."""
    text = error.desc() if hasattr(error, "desc") else str(error)
    op = ""
    operator = error.node_operator() if hasattr(error, "node_operator") else ""
    if operator and re.search(r"(No importer registered|not supported|unsupported)", text, re.IGNORECASE):
        op = operator if ":" in operator else f"ai.onnx:{operator}"
    return text, op


def _logger(trt: Any) -> Any:
    class _Logger(trt.ILogger):  # type: ignore[misc]  # tensorrt's classes are Any here (no type information)
        """Keeps TensorRT's errors for the exception message; warnings would flood the worker log."""

        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            if int(severity) <= int(trt.ILogger.Severity.ERROR):
                self.errors.append(msg)

        def last_error(self) -> str:
            return self.errors[-1] if self.errors else "no error was logged"

    return _Logger()


def _calibrator(trt: Any, cuda: CudaDriver | None, data: Array, batch: int) -> Any:
    assert cuda is not None
    driver: CudaDriver = cuda  # the methods below close over it
    ptr = driver.alloc(data[:batch].nbytes)

    class _Calibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[misc]  # as above
        """Feeds ``data`` to TensorRT's INT8 calibration in batches of ``batch`` rows."""

        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.position = 0

        def get_batch_size(self) -> int:
            return batch

        def get_batch(self, names: list[str]) -> list[int] | None:
            if self.position + batch > len(data):
                return None
            chunk = np.ascontiguousarray(data[self.position : self.position + batch])
            driver.to_device(ptr, chunk)
            driver.synchronize()
            self.position += batch
            return [ptr]

        def read_calibration_cache(self) -> None:
            # Calibration is cheap next to the build, and the engine itself is cached.
            return None

        def write_calibration_cache(self, cache: Any) -> None:
            return None

    return _Calibrator()
