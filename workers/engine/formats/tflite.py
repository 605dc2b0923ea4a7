"""Inspection of TFLite (LiteRT) flatbuffer models.

A ``.tflite`` file is a FlatBuffer whose 4-byte file identifier, at offset
4, is ``TFL3``. The LiteRT interpreter verifies the whole buffer before it
touches it, so a truncated or corrupt file is reported rather than read out
of bounds; allocating its tensors then proves every operator is one the
runtime has.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from workers.engine.errors import EngineError, InvalidArtifact
from workers.engine.types import Dim, ModelInfo, TensorSpec

__all__ = ["TFLITE_IDENTIFIER", "inspect_tflite", "tflite_tensor_spec"]

TFLITE_IDENTIFIER = b"TFL3"

_SNIFF = (
    (b"PK\x03\x04", "the file is a ZIP archive (a PyTorch file?)"),
    (b"\x89PNG\r\n\x1a\n", "the file is a PNG image"),
    (b"\x89HDF", "the file is an HDF5 file (a Keras .h5 model?)"),
    (b"<?xml", "the file is XML (an OpenVINO IR .xml?)"),
    (b"\x80\x02", "the file looks like a Python pickle"),
    (b"\x80\x04", "the file looks like a Python pickle"),
)


def tflite_tensor_spec(detail: dict[str, Any]) -> TensorSpec:
    """A LiteRT input/output detail dict as a :class:`TensorSpec` (``-1`` dims in the signature -> ``None``)."""
    signature = detail.get("shape_signature")
    dims = signature if signature is not None and len(signature) else detail["shape"]
    shape: tuple[Dim, ...] = tuple(None if int(d) < 0 else int(d) for d in dims)
    return TensorSpec(str(detail["name"]), str(np.dtype(detail["dtype"])), shape)


def inspect_tflite(path: str) -> ModelInfo:
    """Validate a TFLite model and describe its signature.

    Parameters
    ----------
    path:
        Local path of the uploaded ``.tflite`` file.

    Returns
    -------
    ModelInfo
        The first subgraph's inputs and outputs (dynamic dims as ``None``),
        the schema version and the converter's description as producer.

    Raises
    ------
    InvalidArtifact
        For an empty file, a file without the ``TFL3`` identifier, a buffer
        that fails verification (truncated, corrupt) or operators the runtime
        does not have.
    """
    size = os.path.getsize(path)
    if size == 0:
        raise InvalidArtifact("the file is empty")
    with open(path, "rb") as fh:
        head = fh.read(64)
    if len(head) < 8 or head[4:8] != TFLITE_IDENTIFIER:
        raise InvalidArtifact(f"not a TFLite model: {_what(head)}")
    try:
        from ai_edge_litert import schema_py_generated as schema
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:  # the service's own install is incomplete: not the uploader's fault
        raise EngineError(f"TFLite models cannot be validated here: {exc}", permanent=False) from exc
    try:
        interpreter = Interpreter(model_path=path, num_threads=1)
    except ValueError as exc:
        raise InvalidArtifact(f"the TFLite model is truncated or corrupt: {_first_line(exc, path)}") from exc
    try:
        interpreter.allocate_tensors()
    except RuntimeError as exc:
        raise InvalidArtifact(f"the TFLite runtime cannot prepare the model: {_first_line(exc, path)}") from exc
    inputs = tuple(tflite_tensor_spec(d) for d in interpreter.get_input_details())
    outputs = tuple(tflite_tensor_spec(d) for d in interpreter.get_output_details())
    if not inputs or not outputs:
        raise InvalidArtifact("the TFLite model has no inputs or no outputs")
    with open(path, "rb") as fh:
        data = fh.read()
    model = schema.Model.GetRootAs(data, 0)
    description = model.Description()
    return ModelInfo(
        format="tflite",
        inputs=inputs,
        outputs=outputs,
        ir_version=int(model.Version()),
        producer_name=description.decode("utf-8", "replace") if description else "",
    )


def _what(head: bytes) -> str:
    if len(head) < 8:
        return f"the file is only {len(head)} bytes long"
    for magic, what in _SNIFF:
        if head.startswith(magic):
            return what
    if head[0] == 0x08 and 1 <= head[1] <= 30:
        return "the file looks like an ONNX model"
    return f"the file identifier is {head[4:8]!r}, not {TFLITE_IDENTIFIER!r}"


def _first_line(exc: BaseException, path: str) -> str:
    text = str(exc).strip().replace(path, "<model>")
    return text.splitlines()[0] if text else type(exc).__name__
