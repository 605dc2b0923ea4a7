"""Backend lookup by name, importing each runtime only when first asked for.

Importing a runtime can be slow or impossible on a given worker (no GPU
library, no wheel for the platform), so the registry holds import strings and
turns an ImportError into :class:`BackendUnavailable` with an install hint.
"""

from __future__ import annotations

import importlib
from typing import Any

from workers.engine.errors import BackendUnavailable, EngineError
from workers.engine.inference.base import Backend

__all__ = ["BACKENDS", "backend_names", "get_backend_class", "probe_backends"]

#: name -> ("module:Class", install hint)
BACKENDS: dict[str, tuple[str, str]] = {
    "onnxruntime": ("workers.engine.inference.onnxruntime:OnnxRuntimeBackend", "pip install onnxruntime"),
    "openvino": ("workers.engine.inference.openvino:OpenVinoBackend", "pip install openvino"),
    "torch": ("workers.engine.inference.pytorch:TorchBackend", "pip install torch"),
    "tensorrt": ("workers.engine.inference.tensorrt:TensorRtBackend", "pip install evalsvc[gpu]"),
    "tflite": ("workers.engine.inference.tflite:TfLiteBackend", "pip install ai-edge-litert"),
}

_loaded: dict[str, type[Backend]] = {}


def backend_names() -> list[str]:
    """Return the registered backend names, sorted."""
    return sorted(BACKENDS)


def get_backend_class(name: str) -> type[Backend]:
    """Import and return the backend class registered as ``name``.

    Raises
    ------
    EngineError
        For a name that is not registered (the message lists the known ones).
    BackendUnavailable
        When the backend's runtime library cannot be imported on this worker.
    """
    if name in _loaded:
        return _loaded[name]
    if name not in BACKENDS:
        raise EngineError(f"unknown backend {name!r}; known backends: {', '.join(backend_names())}")
    target, hint = BACKENDS[name]
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendUnavailable(name, str(exc) or type(exc).__name__, hint=hint) from exc
    cls = getattr(module, class_name)
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise EngineError(f"backend {name!r} is registered as {target}, which is not a Backend subclass")
    _loaded[name] = cls
    return cls


def probe_backends() -> list[dict[str, Any]]:
    """Report, for every registered backend, whether this worker can use it.

    Returns
    -------
    list of dict
        One ``{"name", "available", "version", "devices", "precisions",
        "formats", "reason"}`` per backend, in name order; ``reason`` is
        ``None`` when available, and the lists are empty when not.
    """
    report = []
    for name in backend_names():
        entry: dict[str, Any] = {
            "name": name,
            "available": False,
            "version": None,
            "devices": [],
            "precisions": [],
            "formats": [],
            "reason": None,
        }
        try:
            info = get_backend_class(name).probe()
        except EngineError as exc:
            entry["reason"] = exc.message
        except Exception as exc:  # a broken runtime must not break the probe of the others
            entry["reason"] = f"{type(exc).__name__}: {exc}"
        else:
            entry.update(
                available=True,
                version=info.get("version"),
                devices=list(info.get("devices", [])),
                precisions=list(info.get("precisions", [])),
                formats=list(info.get("formats", [])),
            )
        report.append(entry)
    return report
