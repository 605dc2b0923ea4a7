"""Smaller numeric variants of an ONNX model: FP16, dynamic INT8, static INT8.

Each variant is written as a new ONNX file; the job that calls these then
registers it as a version linked to its parent and measures what it costs in
accuracy and agreement and buys in size and latency.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import onnx

from workers.engine.errors import EngineError

if TYPE_CHECKING:
    from workers.engine.arrays import Array

#: Variant names a quantization job accepts.
VARIANTS = ("fp16", "int8_dynamic", "int8_static")

# ONNX-ML operators (scikit-learn converters) have no quantized or FP16 kernels.
_ML_DOMAIN = "ai.onnx.ml"


@dataclass(frozen=True)
class Variant:
    name: str
    path: str
    size_bytes: int
    #: Operator types that stayed in FP32 (unsupported by the quantizer), for the report.
    notes: str = ""


def _ml_ops(model: onnx.ModelProto) -> list[str]:
    return sorted({f"{n.domain}:{n.op_type}" for n in model.graph.node if n.domain == _ML_DOMAIN})


_REDUCED_OPS = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger"}


def reduced_precision(model: onnx.ModelProto) -> str | None:
    """Why this model is already quantized or in FP16 (None if it is not): converting it again is refused."""
    ops = sorted({n.op_type for n in model.graph.node if n.op_type in _REDUCED_OPS or n.op_type.startswith("QLinear")})
    if ops:
        return f"it is already quantized (it has {', '.join(ops)} operators)"
    if any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer):
        return "its weights are already FP16"
    return None


def _refuse_reduced(model: onnx.ModelProto, what: str) -> None:
    reason = reduced_precision(model)
    if reason:
        raise EngineError(f"{what} conversion needs an FP32 model, but {reason}: convert the original FP32 model")


def _quantizable_ops(model: onnx.ModelProto) -> int:
    kinds = {"Conv", "MatMul", "Gemm", "ConvTranspose", "Attention", "LSTM", "GRU"}
    return sum(1 for n in model.graph.node if n.op_type in kinds)


def fp16(source: str, target: str) -> Variant:
    """Convert weights and activations to float16, keeping float32 inputs and outputs."""
    from onnxruntime.transformers import float16

    model = onnx.load(source)
    _refuse_reduced(model, "FP16")
    ml_ops = _ml_ops(model)
    if ml_ops:
        raise EngineError(f"FP16 conversion does not support ONNX-ML operators: {', '.join(ml_ops)}")
    converted = float16.convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=False)
    # The converter appends the Cast nodes for kept float32 inputs at the end of the
    # node list; ONNX requires producers before consumers.
    _topological_sort(converted.graph)
    onnx.checker.check_model(converted)
    onnx.save(converted, target)
    return Variant("fp16", target, os.path.getsize(target))


def int8_dynamic(source: str, target: str) -> Variant:
    """Weights to int8 ahead of time; activations quantized on the fly per batch."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(source)
    _require_quantizable(model, "dynamic INT8")
    quantize_dynamic(source, target, weight_type=QuantType.QInt8)
    return Variant("int8_dynamic", target, os.path.getsize(target))


def int8_static(source: str, target: str, calibration: Iterable[dict[str, Array]]) -> Variant:
    """Weights and activations to int8 (QDQ), with activation ranges from calibration batches."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    model = onnx.load(source)
    _require_quantizable(model, "static INT8")
    batches = list(calibration)
    if not batches:
        raise EngineError("static INT8 quantization needs calibration rows: the calibration sample is empty")

    class Reader(CalibrationDataReader):  # type: ignore[misc]  # onnxruntime ships no type information
        def __init__(self) -> None:
            self._iter = iter(batches)

        def get_next(self) -> dict[str, Array] | None:
            return next(self._iter, None)

    # The quantizer keeps its augmented calibration model in its own temporary directory.
    quantize_static(
        source,
        target,
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        calibrate_method=CalibrationMethod.MinMax,
    )
    rows = sum(len(next(iter(b.values()))) for b in batches)
    return Variant("int8_static", target, os.path.getsize(target), notes=f"calibrated on {rows} rows")


def _topological_sort(graph: onnx.GraphProto) -> None:
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        ready = [n for n in pending if all(name in available for name in n.input)]
        if not ready:
            raise EngineError("the converted graph has a cycle or a missing input")
        for node in ready:
            ordered.append(node)
            available.update(node.output)
        pending = [n for n in pending if not any(n is r for r in ready)]
    del graph.node[:]
    graph.node.extend(ordered)


def _require_quantizable(model: onnx.ModelProto, what: str) -> None:
    _refuse_reduced(model, what)
    ml_ops = _ml_ops(model)
    if ml_ops:
        raise EngineError(
            f"{what} quantization cannot quantize ONNX-ML operators ({', '.join(ml_ops)}); "
            "it applies to neural-network operators such as Conv, MatMul and Gemm"
        )
    if _quantizable_ops(model) == 0:
        raise EngineError(f"{what} quantization found no Conv, MatMul or Gemm operator to quantize in this model")
