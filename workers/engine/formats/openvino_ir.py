"""Inspection of OpenVINO IR models: an ``.xml`` graph and the ``.bin`` file holding its weights.

The two files are uploaded separately, so the usual failures are a missing,
truncated or swapped ``.bin``. Every ``Const`` layer of the graph names the
byte range of its data in the ``.bin``; the furthest end of those ranges is
exactly the size of the ``.bin`` OpenVINO wrote with the ``.xml``, which
catches a truncated file and, in practice, the weights of another model.
OpenVINO itself then reads the pair to prove it loads.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np

from workers.engine.errors import EngineError, InvalidArtifact
from workers.engine.types import Dim, ModelInfo, TensorSpec

__all__ = ["inspect_openvino", "openvino_dtype_name", "partial_shape", "port_spec", "weights_extent"]

_IR_VERSIONS = (10, 11)


def openvino_dtype_name(element_type: Any) -> str:
    """The numpy-style name of an OpenVINO element type (``"float32"``, ``"int64"``, ...)."""
    try:
        return str(np.dtype(element_type.to_dtype()))
    except (TypeError, RuntimeError, ValueError):
        return str(element_type.get_type_name())


def partial_shape(shape: Any) -> tuple[Dim, ...] | None:
    """An OpenVINO ``PartialShape`` as engine dims: static lengths as ints, dynamic ones as ``None``."""
    if not shape.rank.is_static:
        return None
    return tuple(int(d.get_length()) if d.is_static else None for d in shape)


def weights_extent(root: ET.Element) -> int:
    """The number of ``.bin`` bytes the graph refers to: the furthest end of any ``Const`` data range."""
    end = 0
    for data in root.iterfind("./layers/layer[@type='Const']/data"):
        try:
            end = max(end, int(data.get("offset", "0")) + int(data.get("size", "0")))
        except ValueError as exc:
            raise InvalidArtifact(f"the IR .xml has a Const layer with a bad offset or size: {exc}") from exc
    return end


def inspect_openvino(path: str, weights_path: str | None) -> ModelInfo:
    """Validate an OpenVINO IR pair and describe its signature.

    Parameters
    ----------
    path:
        The ``.xml`` file.
    weights_path:
        The ``.bin`` file uploaded with it.

    Returns
    -------
    ModelInfo
        Inputs and outputs with OpenVINO's shapes (dynamic dims as ``None``),
        the IR version, and the OpenVINO version that wrote it as producer.

    Raises
    ------
    InvalidArtifact
        For an empty or non-XML ``.xml``, an XML file that is not an IR, an
        IR version OpenVINO no longer reads, a missing, short or oversized
        ``.bin``, or a pair OpenVINO refuses.
    """
    if os.path.getsize(path) == 0:
        raise InvalidArtifact("the IR .xml file is empty")
    if not weights_path:
        raise InvalidArtifact("an OpenVINO IR model needs its .bin weights file besides the .xml")
    root = _parse(path)
    version = root.get("version", "")
    if not version.isdigit() or int(version) not in _IR_VERSIONS:
        raise InvalidArtifact(
            f"IR version {version or '(none)'} is not supported; OpenVINO reads versions "
            f"{', '.join(map(str, _IR_VERSIONS))} (convert the model again with a current OpenVINO)"
        )
    needed = weights_extent(root)
    have = os.path.getsize(weights_path)
    if have < needed:
        raise InvalidArtifact(
            f"the .bin weights file is too short for this .xml: the graph needs {needed} bytes, the file has "
            f"{have}; it is truncated or belongs to another model"
        )
    if have > needed:
        raise InvalidArtifact(
            f"the .bin weights file does not belong to this .xml: the graph uses {needed} bytes of weights, "
            f"the file has {have}"
        )
    try:
        import openvino as ov
    except ImportError as exc:  # the service's own install is incomplete: not the uploader's fault
        raise EngineError(f"OpenVINO IR cannot be validated here: {exc}", permanent=False) from exc
    try:
        model = ov.Core().read_model(path, weights_path)
    except RuntimeError as exc:
        raise InvalidArtifact(f"OpenVINO cannot read the IR: {_clean(exc, path, weights_path)}") from exc
    inputs = tuple(port_spec(p) for p in model.inputs)
    outputs = tuple(port_spec(p) for p in model.outputs)
    if not inputs:
        raise InvalidArtifact("the IR graph has no inputs (Parameter layers)")
    if not outputs:
        raise InvalidArtifact("the IR graph has no outputs (Result layers)")
    return ModelInfo(
        format="openvino",
        inputs=inputs,
        outputs=outputs,
        opset=_opsets(root),
        ir_version=int(version),
        producer_name="openvino",
        producer_version=_runtime_version(root),
    )


def _parse(path: str) -> ET.Element:
    with open(path, "rb") as fh:
        head = fh.read(64)
    try:
        # expat resolves no external entities and caps entity expansion, so
        # parsing an uploaded file opens nothing else.
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        if not head.lstrip().startswith(b"<"):
            raise InvalidArtifact("not an OpenVINO IR .xml: the file is not XML") from exc
        raise InvalidArtifact(f"the IR .xml is truncated or malformed: {exc}") from exc
    if root.tag != "net":
        raise InvalidArtifact(f"not an OpenVINO IR .xml: the root element is <{root.tag}>, not <net>")
    if root.find("layers") is None:
        raise InvalidArtifact("the IR .xml has no <layers>")
    return root


def _opsets(root: ET.Element) -> dict[str, int]:
    # Layers name their operation set as "opset8", "opset1", ...: report the
    # highest one used, the way ONNX reports its opset import.
    highest = 0
    for layer in root.iterfind("./layers/layer"):
        name = layer.get("version", "")
        if name.startswith("opset") and name[5:].isdigit():
            highest = max(highest, int(name[5:]))
    return {"opset": highest} if highest else {}


def _runtime_version(root: ET.Element) -> str:
    for tag in ("Runtime_version", "MO_version"):
        node = root.find(f"rt_info/{tag}")
        if node is not None and node.get("value"):
            return str(node.get("value"))
    return ""


def port_spec(port: Any) -> TensorSpec:
    """A model input or output port as a :class:`TensorSpec`.

    A port may carry several tensor names; the first in sorted order is
    stable from one run to the next, and OpenVINO accepts any of them.
    """
    names = sorted(port.get_names())
    return TensorSpec(
        names[0] if names else port.get_any_name(),
        openvino_dtype_name(port.get_element_type()),
        partial_shape(port.get_partial_shape()),
    )


def _clean(exc: BaseException, *paths: str) -> str:
    lines = [
        line.strip()
        for line in str(exc).splitlines()
        if line.strip() and not line.strip().startswith(("Exception from ", "Check '"))
    ]
    text = " ".join(lines) or type(exc).__name__
    for p in paths:
        text = text.replace(p, "<model>")
    return text[:500]
