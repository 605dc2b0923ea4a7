"""PyTorch backend (registry name ``"torch"``): TorchScript archives and torch.export programs on CPU or CUDA.

Never unpickles. A TorchScript archive is checked by its ZIP entries and
loaded with ``torch.jit.load``, whose C++ unpickler rebuilds tensors and
TorchScript objects only; ``torch.load`` is never called. A torch.export
program (``.pt2``) is loaded by
:func:`workers.engine.formats.torch_export.load_torch_export`, never by
``torch.export.load`` (which unpickles and evaluates parts of the archive),
and run as ``ExportedProgram.module()``.

Devices
-------
``"cpu"``, and ``"cuda"``/``"cuda:N"`` with a CUDA build of torch and a GPU.

Options
-------
precision:
    ``"fp32"`` (default); ``"fp16"`` on CUDA for TorchScript (the module and
    inputs are cast to half, outputs cast back to float32). A torch.export
    program runs in the element types its graph was exported with: fp32 only.
threads:
    ``torch.set_num_threads``: note that it applies to the whole process.
output_names:
    Names for the outputs of a model returning a tensor or a tuple of
    tensors (default ``"output"``, or ``"output_0"``, ``"output_1"``, ...).
    A model returning a dict names its outputs by the dict keys. The same
    for both formats.
"""

from __future__ import annotations

import os
import re
import warnings
from typing import Any, ClassVar

import numpy as np
import torch

from workers.engine.arrays import Array
from workers.engine.errors import BackendUnavailable, EngineError, InvalidArtifact
from workers.engine.formats.torch_export import load_torch_export
from workers.engine.formats.torchscript import check_torchscript_archive
from workers.engine.inference._common import clean_message, cuda_devices, int_option, precision_option
from workers.engine.inference.base import Backend
from workers.engine.types import ModelSpec, TensorSpec

__all__ = ["TorchBackend"]

# torch.inference_mode() enters exactly this C++ guard, after a few microseconds
# of Python (__new__, __init__, a scripting check) that would double the
# per-call cost for a small model; the public class stays the fallback.
_inference_mode: Any = getattr(torch._C, "_InferenceMode", None) or torch.inference_mode

_CUDA_DEVICE = re.compile(r"cuda(?::(\d+))?")
_TUPLE = re.compile(r"^\((.*)\)$|^Tuple\[(.*)\]$")


class TorchBackend(Backend):
    """Run TorchScript models and torch.export programs with PyTorch.

    Parameters
    ----------
    spec:
        A TorchScript archive (``torch.jit.save``, format ``"torchscript"``)
        or a torch.export program (``torch.export.save``, ``"torch_export"``).
    device:
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    options:
        ``precision``, ``threads``, ``output_names`` (see the module docstring).

    Notes
    -----
    TorchScript records argument names but no shapes or element types, so
    :attr:`input_specs` name the ``forward`` arguments with dtype
    ``"float32"`` and unknown shape; a torch.export program records both
    (symbolic dimensions as their symbol, e.g. ``"s31"``). :meth:`predict` runs under
    ``torch.inference_mode`` on tensors that share the caller's arrays
    (``torch.from_numpy``), and returns arrays that share the output
    tensors' memory on the CPU.
    """

    name: ClassVar[str] = "torch"
    pip_hint: ClassVar[str] = "pip install torch"
    formats: ClassVar[tuple[str, ...]] = ("torchscript", "torch_export")
    option_names: ClassVar[frozenset[str]] = frozenset({"precision", "threads", "output_names"})

    def __init__(self, spec: ModelSpec, *, device: str = "cpu", options: dict[str, Any] | None = None) -> None:
        super().__init__(spec, device=device, options=options)
        self._module: Any = None
        self._forward: Any = None
        self._simple = False
        self._arg_names: tuple[str, ...] = ()
        # torch.export: how many of _arg_names are positional (the rest are keyword arguments).
        self._positional = 0
        self._out0 = "output"
        self._output_names: tuple[str, ...] = ()
        self._torch_device = torch.device("cpu")
        self._half = False
        self._precision = ""

    @classmethod
    def probe(cls) -> dict[str, Any]:
        devices, precisions = ["cpu"], ["fp32"]
        # A CPU build (torch.version.cuda is None) never needs the device query.
        if torch.version.cuda is not None and cuda_devices()[0]:
            devices.append("cuda")
            precisions.append("fp16")
        return {
            "version": torch.__version__,
            "devices": devices,
            "precisions": precisions,
            "formats": list(cls.formats),
        }

    def load(self) -> None:
        if self._module is not None:
            return
        device = self._device()
        exported = self.spec.format == "torch_export"
        cuda_fp16 = device.type == "cuda" and not exported
        precision = precision_option(self.name, self.options, ("fp32", "fp16") if cuda_fp16 else ("fp32",))
        threads = int_option(self.name, self.options, "threads", minimum=1)
        if not os.path.exists(self.spec.path):
            # The file should have been fetched to this worker; another try may find it.
            raise EngineError("the model file is missing on the worker", permanent=False)
        if exported:
            self._load_program(device)
        else:
            self._load_torchscript(device, precision)
        if threads is not None:
            torch.set_num_threads(threads)
        self._out0 = self._output_names[0] if self._output_names else "output"
        self._torch_device = device
        self._half = precision == "fp16"
        self._precision = precision
        # One argument, CPU, fp32: predict's fast path, with no conversions.
        self._simple = self._positional == 1 == len(self._arg_names) and device.type == "cpu" and not self._half

    def _load_torchscript(self, device: torch.device, precision: str) -> None:
        check_torchscript_archive(self.spec.path)
        try:
            with warnings.catch_warnings():
                # "torch.jit.load is deprecated": TorchScript is still the one format torch loads without pickle.
                warnings.simplefilter("ignore", DeprecationWarning)
                module = torch.jit.load(self.spec.path, map_location=device)  # type: ignore[no-untyped-call]  # unannotated in torch
        except (RuntimeError, ValueError) as exc:
            raise InvalidArtifact(f"PyTorch cannot load the TorchScript model: {self._clean(exc)}") from exc
        module.eval()
        if precision == "fp16":
            module.half()
        try:
            schema = module.forward.schema
        except (AttributeError, RuntimeError) as exc:
            raise InvalidArtifact("the TorchScript model has no forward() method to run") from exc
        self._output_names = self._outputs_from(schema)
        self._arg_names = tuple(_public(a.name) for a in schema.arguments if a.name != "self")
        self._positional = len(self._arg_names)
        self._inputs = tuple(TensorSpec(name, "float32", None) for name in self._arg_names)
        self._outputs = tuple(TensorSpec(name, "float32", None) for name in self._output_names)
        self._module = module
        # A loaded TorchScript module has no Python hooks, so its compiled
        # forward can be called directly, skipping nn.Module.__call__.
        self._forward = module.forward

    def _load_program(self, device: torch.device) -> None:
        try:
            loaded = load_torch_export(self.spec.path, device=device)
        except InvalidArtifact as exc:
            raise InvalidArtifact(clean_message(exc.message, self.spec.path)) from exc
        names = self._option_output_names()
        if names is not None and loaded.output_kind != "dict" and len(names) != len(loaded.outputs):
            raise EngineError(
                f"torch backend: output_names has {len(names)} names; the model returns {len(loaded.outputs)} outputs"
            )
        if names is None or loaded.output_kind == "dict":
            # As for TorchScript: a returned dict names its outputs by its keys.
            names = tuple(spec.name for spec in loaded.outputs)
        self._arg_names = (*loaded.positional, *loaded.keywords)
        self._positional = len(loaded.positional)
        self._inputs = loaded.inputs
        self._output_names = tuple(names)
        self._outputs = tuple(
            TensorSpec(name, spec.dtype, spec.shape) for name, spec in zip(names, loaded.outputs, strict=True)
        )
        self._module = loaded.module
        # Called through nn.Module.__call__: its pre-hook checks the inputs
        # against the exported shapes and ranges, with a readable error.
        self._forward = loaded.module

    def _device(self) -> torch.device:
        if self.device == "cpu":
            return torch.device("cpu")
        match = _CUDA_DEVICE.fullmatch(self.device)
        if match is None:
            raise BackendUnavailable(self.name, f"device {self.device!r} is not supported; it runs on: cpu, cuda")
        if torch.version.cuda is None:
            raise BackendUnavailable(
                self.name, f"this torch {torch.__version__} is a CPU-only build", hint="install a CUDA build of torch"
            )
        # Inside the worker process, after any fork: safe to initialise CUDA here.
        if not torch.cuda.is_available():
            raise BackendUnavailable(self.name, "no CUDA device")
        index = int(match.group(1) or 0)
        if index >= torch.cuda.device_count():
            raise BackendUnavailable(self.name, f"no CUDA device {index}: this worker has {torch.cuda.device_count()}")
        return torch.device("cuda", index)

    def _option_output_names(self) -> tuple[str, ...] | None:
        names = self.options.get("output_names")
        if names is None:
            return None
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) and n for n in names):
            raise EngineError("torch backend: output_names must be a list of non-empty strings")
        return tuple(names)

    def _outputs_from(self, schema: Any) -> tuple[str, ...]:
        names = self._option_output_names()
        if names is not None:
            return names
        returns = str(schema.returns[0].type) if schema.returns else "Tensor"
        match = _TUPLE.match(returns)
        if match:
            count = len(_split_types(match.group(1) or match.group(2)))
            return tuple(f"output_{i}" for i in range(count))
        if returns == "Tensor":
            return ("output",)
        # A dict's keys are known only once it has run.
        return ()

    def predict(self, inputs: dict[str, Array]) -> dict[str, Array]:
        forward = self._forward
        if forward is None:
            raise EngineError("torch backend: predict() called before load()", permanent=False)
        if self._simple and len(inputs) == 1:
            # The hot path: one CPU tensor sharing the caller's array, one output array sharing the result's.
            try:
                array = inputs[self._arg_names[0]]
                if type(array) is Array and array.flags.writeable:
                    tensor = torch.from_numpy(array)
                else:
                    tensor = self._tensor(array)
                with _inference_mode(True):
                    result = forward(tensor)
            except Exception as exc:
                raise self._run_error(exc, inputs) from exc
            if type(result) is torch.Tensor:
                return {self._out0: result.numpy()}
            return self._named(result)
        try:
            args = [inputs[name] for name in self._arg_names]
        except KeyError:
            raise EngineError(
                f"torch backend: the model takes inputs {', '.join(self._arg_names)}; got {', '.join(inputs)}"
            ) from None
        if len(inputs) != len(args):
            extra = sorted(set(inputs) - set(self._arg_names))
            raise EngineError(f"torch backend: unknown inputs {', '.join(extra)}; the model takes {self._arg_names}")
        try:
            tensors = [self._tensor(a) for a in args]
            positional = self._positional
            with _inference_mode(True):
                if positional == len(tensors):
                    result = forward(*tensors)
                else:
                    result = forward(
                        *tensors[:positional],
                        **dict(zip(self._arg_names[positional:], tensors[positional:], strict=True)),
                    )
        except Exception as exc:
            raise self._run_error(exc, inputs) from exc
        if isinstance(result, torch.Tensor):
            return {self._out0: self._array(result)}
        return self._named(result)

    def _run_error(self, exc: Exception, inputs: dict[str, Any]) -> EngineError:
        if isinstance(exc, KeyError):
            return EngineError(
                f"torch backend: the model takes inputs {', '.join(self._arg_names)}; got {', '.join(inputs)}"
            )
        if isinstance(exc, (RuntimeError, ValueError, TypeError, AttributeError)):
            return EngineError(f"PyTorch failed to run the model: {self._clean(exc)}")
        return EngineError(f"PyTorch failed to run the model: {self._clean(exc)}", permanent=False)

    def _tensor(self, array: Array) -> torch.Tensor:
        if not isinstance(array, np.ndarray):
            array = np.asarray(array)
        # from_numpy shares memory; a read-only array (a view on a buffer) is
        # copied first because torch warns on, and may write to, shared memory.
        tensor = torch.from_numpy(array if array.flags.writeable else array.copy())
        if self._torch_device.type != "cpu":
            tensor = tensor.to(self._torch_device)
        if self._half and tensor.is_floating_point():
            tensor = tensor.half()
        return tensor

    def _array(self, tensor: torch.Tensor) -> Array:
        if self._half and tensor.dtype == torch.float16:
            tensor = tensor.float()
        if tensor.device.type != "cpu":
            tensor = tensor.cpu()
        return tensor.numpy()

    def _named(self, result: Any) -> dict[str, Array]:
        if isinstance(result, dict):
            return {str(k): self._array(v) for k, v in result.items()}
        if isinstance(result, (tuple, list)):
            names = self._output_names or tuple(f"output_{i}" for i in range(len(result)))
            if len(names) != len(result):
                raise EngineError(f"torch backend: the model returned {len(result)} outputs, named {list(names)}")
            return {n: self._array(v) for n, v in zip(names, result, strict=True)}
        raise EngineError(f"torch backend: the model returned {type(result).__name__}, not tensors")

    def unload(self) -> None:
        self._module = None
        self._forward = None
        self._inputs = self._outputs = None
        if self._torch_device.type == "cuda":
            torch.cuda.empty_cache()

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "version": torch.__version__,
            "provider": "torch.export" if self.spec.format == "torch_export" else "torch.jit",
            "device": self.device,
            "precision": self._precision or "fp32",
        }

    def _clean(self, exc: BaseException) -> str:
        text = str(exc).split(". This is an internal miniz error")[0]
        return clean_message(text, self.spec.path)


def _public(name: str) -> str:
    # TorchScript renames shadowed arguments "x.1"; the user wrote "x".
    return name.split(".")[0] if re.fullmatch(r"\w+\.\d+", name) else name


def _split_types(text: str) -> list[str]:
    depth, parts, current = 0, [], ""
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current.strip())
    return parts
