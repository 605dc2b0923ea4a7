"""Embeddings for drift on images and text: the model's penultimate layer, or its input projected.

``source="penultimate"`` reads an intermediate tensor as an extra output:
in a temporary copy of the ONNX model, the tensor (``layer``, or by default
the input of the last dense layer — the ``Gemm`` or ``MatMul`` whose output
is a graph output, directly or through element-wise nodes) is added to the
graph's outputs, and ONNX Runtime returns it beside the model's own outputs.
``source="input"`` takes the model's input itself (the prepared images or
token ids), flattened. Either way :func:`~workers.engine.drift.multivariate.embedding_drift`
then projects both sides with the same fixed Gaussian matrix and runs MMD.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from workers.engine.arrays import Array
from workers.engine.errors import EngineError
from workers.engine.feed import input_batches
from workers.engine.types import DatasetRef, ModelSpec

__all__ = ["EMBEDDING_SOURCES", "model_embeddings", "penultimate_tensor"]

EMBEDDING_SOURCES = ("penultimate", "input")
#: Nodes a dense layer's output may pass through on its way to a graph output.
_PASS_THROUGH = {"Relu", "Sigmoid", "Softmax", "LogSoftmax", "Tanh", "Identity", "Add", "Reshape", "Flatten", "Cast"}


def penultimate_tensor(graph: Any) -> str:
    """The input of the last dense layer: what the classifier's head reads."""
    outputs = {o.name for o in graph.output}
    producer = {out: node for node in graph.node for out in node.output}
    for name in outputs:
        node = producer.get(name)
        while node is not None and node.op_type in _PASS_THROUGH:
            node = producer.get(node.input[0])
        if node is not None and node.op_type in ("Gemm", "MatMul"):
            return str(node.input[0])
    raise EngineError("no dense layer (Gemm or MatMul) feeds the model's output; name the embedding layer")


def _with_output(model: ModelSpec, layer: str | None, directory: str) -> tuple[ModelSpec, str]:
    import onnx

    if model.format != "onnx":
        raise EngineError("penultimate-layer embeddings read ONNX models; use source 'input' for other formats")
    proto = onnx.load(model.path, load_external_data=False)
    tensor = layer or penultimate_tensor(proto.graph)
    produced = {out for node in proto.graph.node for out in node.output} | {i.name for i in proto.graph.input}
    if tensor not in produced:
        raise EngineError(f"the model has no tensor {tensor!r} to read as the embedding")
    if tensor not in {o.name for o in proto.graph.output}:
        proto.graph.output.append(onnx.ValueInfoProto(name=tensor))
    path = Path(directory) / "embedding.onnx"
    if model.weights_path:  # external weights stay where they are, next to the original file
        path = Path(model.path).with_name(f".embedding-{Path(model.path).name}")
    onnx.save(proto, str(path))
    return ModelSpec(path=str(path), format="onnx", sha256="", weights_path=model.weights_path), tensor


def model_embeddings(
    model: ModelSpec,
    data: DatasetRef,
    *,
    source: str = "penultimate",
    layer: str | None = None,
    max_rows: int = 1000,
    batch_size: int = 256,
    feature_columns: list[str] | None = None,
    processing: dict[str, Any] | None = None,
    tokenizer_path: str | None = None,
) -> tuple[Array, dict[str, Any]]:
    """One embedding per row (up to ``max_rows``), and what it was read from."""
    from workers.engine.inference.registry import get_backend_class

    if source not in EMBEDDING_SOURCES:
        raise EngineError(f"embedding source must be one of {', '.join(EMBEDDING_SOURCES)}, not {source!r}")
    common: dict[str, Any] = {
        "batch_size": batch_size,
        "max_rows": max_rows,
        "feature_columns": feature_columns,
        "processing": processing,
        "tokenizer_path": tokenizer_path,
    }
    parts: list[Array] = []
    if source == "input":
        for inputs in input_batches(model, data, **common):
            first = next(iter(inputs.values()))
            parts.append(np.asarray(first, dtype=np.float64).reshape(len(first), -1))
        info: dict[str, Any] = {"source": "input", "tensor": "model input"}
    else:
        with tempfile.TemporaryDirectory(prefix="embedding-") as tmp:
            spec, tensor = _with_output(model, layer, tmp)
            try:
                with get_backend_class("onnxruntime")(spec, device="cpu") as runner:
                    for inputs in input_batches(model, data, **common):
                        out = np.asarray(runner.predict(inputs)[tensor], dtype=np.float64)
                        parts.append(out.reshape(len(out), -1))
            finally:
                if spec.path != str(Path(tmp) / "embedding.onnx"):
                    Path(spec.path).unlink(missing_ok=True)
        info = {"source": "penultimate", "tensor": tensor}
    if not parts:
        raise EngineError("the data set has no rows to embed")
    embeddings = np.concatenate(parts)
    info.update(rows=int(embeddings.shape[0]), dimensions=int(embeddings.shape[1]))
    return embeddings, info
