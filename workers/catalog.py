"""Names the web side validates against, without importing any worker code.

The engine's registry (:mod:`workers.engine.inference.registry`) maps each
backend name to the class that implements it, and the quantization pipeline
makes each variant; architecture tests keep these lists equal to the
engine's. This module imports nothing, so a web container can list and check
names without numpy or any runtime library installed.
"""

from __future__ import annotations

__all__ = ["BACKEND_NAMES", "QUANTIZE_VARIANTS"]

#: Registered inference backend names, sorted.
BACKEND_NAMES: tuple[str, ...] = ("onnxruntime", "openvino", "tensorrt", "tflite", "torch")

#: The variants a quantization job can make (:data:`workers.engine.quantize.VARIANTS`).
QUANTIZE_VARIANTS: tuple[str, ...] = ("fp16", "int8_dynamic", "int8_static")
