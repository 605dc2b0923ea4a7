"""Names the web side validates against, without importing any worker code.

The engine's registry (:mod:`workers.engine.inference.registry`) maps each of
these names to the class that implements it; an architecture test keeps the
two lists equal. This module imports nothing, so a web container can list and
check names without numpy or any runtime library installed.
"""

from __future__ import annotations

__all__ = ["BACKEND_NAMES"]

#: Registered inference backend names, sorted.
BACKEND_NAMES: tuple[str, ...] = ("onnxruntime", "openvino", "tensorrt", "tflite", "torch")
