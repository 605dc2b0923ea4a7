"""Inspection of ONNX model files.

Registration calls :func:`inspect_onnx` once per uploaded file. It rejects
anything the runtime would choke on later (wrong bytes, truncation, checker or
shape-inference failures) with a message the uploader can act on, and returns
the model's signature for the service to store.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator

import onnx
from google.protobuf.message import DecodeError
from onnx import TensorProto, shape_inference

from workers.engine.errors import InvalidArtifact
from workers.engine.formats.onnx_skeleton import SkeletonError, read_skeleton
from workers.engine.types import Dim, ModelInfo, TensorSpec

__all__ = ["inspect_onnx", "onnx_dtype_name"]

_ML_DOMAIN = "ai.onnx.ml"

# Names follow numpy where numpy has the type, so the service and the engine
# talk about element types the same way whatever the model format.
_DTYPE_NAMES: dict[int, str] = {
    TensorProto.FLOAT: "float32",
    TensorProto.DOUBLE: "float64",
    TensorProto.FLOAT16: "float16",
    TensorProto.BFLOAT16: "bfloat16",
    TensorProto.INT8: "int8",
    TensorProto.INT16: "int16",
    TensorProto.INT32: "int32",
    TensorProto.INT64: "int64",
    TensorProto.UINT8: "uint8",
    TensorProto.UINT16: "uint16",
    TensorProto.UINT32: "uint32",
    TensorProto.UINT64: "uint64",
    TensorProto.BOOL: "bool",
    TensorProto.STRING: "string",
    TensorProto.COMPLEX64: "complex64",
    TensorProto.COMPLEX128: "complex128",
}

# Which attribute holds the class labels differs by operator and opset.
_LABEL_ATTRS = ("classlabels_int64s", "classlabels_ints", "classlabels_strings")

# Shape inference names unknown dims "unk__0", "unk__1", ...: those carry no
# meaning for the user, so they are reported as unknown (None).
_GENERATED_DIM = re.compile(r"unk__\d+")

_SNIFF = (
    (b"\x89PNG\r\n\x1a\n", "the file is a PNG image"),
    (b"\xff\xd8\xff", "the file is a JPEG image"),
    (b"PK\x03\x04", "the file is a ZIP archive (a PyTorch or Keras checkpoint?)"),
    (b"\x1f\x8b", "the file is gzip-compressed"),
    (b"PAR1", "the file is a Parquet file"),
    (b"\x80\x02", "the file looks like a Python pickle"),
    (b"\x80\x04", "the file looks like a Python pickle"),
    (b"\x80\x05", "the file looks like a Python pickle"),
    (b"\x89HDF", "the file is an HDF5 file (a Keras .h5 model?)"),
)


def onnx_dtype_name(elem_type: int) -> str:
    """Return the numpy-style name of an ONNX ``TensorProto`` element type.

    Parameters
    ----------
    elem_type:
        A ``onnx.TensorProto.DataType`` value.

    Returns
    -------
    str
        ``"float32"``, ``"int64"``, ``"string"``, ...; types numpy lacks get
        their lower-cased ONNX name (``"float8e4m3fn"``).
    """
    if elem_type in _DTYPE_NAMES:
        return _DTYPE_NAMES[elem_type]
    try:
        return str(TensorProto.DataType.Name(elem_type).lower())
    except ValueError:
        return f"unknown({elem_type})"


def inspect_onnx(path: str) -> ModelInfo:
    """Validate an ONNX file and describe its signature.

    Parameters
    ----------
    path:
        Local path of the uploaded file.

    Returns
    -------
    ModelInfo
        Inputs (initializers excluded), outputs, opsets, IR version,
        producer and, for ONNX-ML classifiers, the class labels in
        probability-column order.

    Raises
    ------
    InvalidArtifact
        When the file is empty, is not an ONNX protobuf, is truncated, refers
        to external data, has no graph, nodes, inputs or outputs, or fails the
        ONNX checker or strict shape inference.
    """
    if os.path.getsize(path) == 0:
        raise InvalidArtifact("the file is empty")
    model, skipped = _load(path)
    _check_structure(model)
    graph_initializers = {t.name for t in model.graph.initializer}
    _weights_as_inputs(model, skipped)
    try:
        # The checker takes the in-memory proto: external data is refused above,
        # so nothing but this file is ever opened.
        onnx.checker.check_model(model, full_check=False)
    except (onnx.checker.ValidationError, ValueError) as exc:
        raise InvalidArtifact(f"ONNX checker rejected the model: {_first_line(exc)}") from exc
    # Before shape inference, whose messages about these are ONNX's internals.
    _check_operator_domains(model)
    _check_expansion(model)
    try:
        inferred = shape_inference.infer_shapes(model, strict_mode=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError, RuntimeError) as exc:
        raise InvalidArtifact(_explain_inference_failure(_first_line(exc))) from exc

    _check_fixed_sizes(inferred)

    graph = model.graph
    initializers = graph_initializers | {t.values.name for t in graph.sparse_initializer}
    inputs = tuple(_value_spec(v) for v in graph.input if v.name not in initializers)
    if not inputs:
        raise InvalidArtifact("the model has no inputs: every graph input is a constant initializer")
    # Declared output types win; inference only fills in undeclared ones.
    inferred_outputs = {v.name: v for v in inferred.graph.output}
    outputs = tuple(_value_spec(v if _declared(v) else inferred_outputs.get(v.name, v)) for v in graph.output)
    return ModelInfo(
        format="onnx",
        inputs=inputs,
        outputs=outputs,
        opset={(o.domain or "ai.onnx"): int(o.version) for o in model.opset_import},
        ir_version=int(model.ir_version),
        producer_name=model.producer_name,
        producer_version=model.producer_version,
        class_labels=_class_labels(graph),
        feature_names=_feature_names(model),
    )


#: Operator domains some runtime here implements: the ONNX standard, ONNX-ML,
#: ONNX Runtime's contrib operators and the training/preview sets.
KNOWN_DOMAINS = frozenset(
    {"", "ai.onnx", _ML_DOMAIN, "com.microsoft", "com.microsoft.nchwc", "ai.onnx.preview.training", "ai.onnx.training"}
)

#: A tensor whose size follows from constants alone and passes this many
#: elements (4 GiB of float32) would exhaust memory on any input.
MAX_CONSTANT_ELEMENTS = 1 << 30


def _check_operator_domains(model: onnx.ModelProto) -> None:
    """Refuse operators no runtime implements: the model would fail every job, after upload."""
    local = {(f.domain, f.name) for f in model.functions}
    for node in _all_nodes(model):
        if node.domain in KNOWN_DOMAINS or (node.domain, node.op_type) in local:
            continue
        raise InvalidArtifact(
            f"node {node.name or node.op_type!r} uses operator {node.domain}:{node.op_type} from the unknown "
            f"domain {node.domain!r}: no runtime here implements it, so every job on the model would fail "
            f"(known domains: {', '.join(sorted(d or 'ai.onnx' for d in KNOWN_DOMAINS if d))})"
        )


def _all_nodes(model: onnx.ModelProto) -> Iterator[onnx.NodeProto]:
    pending = [model.graph, *(f for f in model.functions)]
    while pending:
        graph = pending.pop()
        for node in graph.node:
            yield node
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    pending.append(attr.g)
                elif attr.type == onnx.AttributeProto.GRAPHS:
                    pending.extend(attr.graphs)


def _constant_ints(model: onnx.ModelProto) -> dict[str, list[int]]:
    from onnx import numpy_helper

    found: dict[str, list[int]] = {}
    for tensor in model.graph.initializer:
        if tensor.data_type == TensorProto.INT64 and len(tensor.dims) == 1 and tensor.dims[0] <= 16:
            found[tensor.name] = [int(v) for v in numpy_helper.to_array(tensor)]
    for node in model.graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type == TensorProto.INT64 and len(attr.t.dims) == 1:
                    found[node.output[0]] = [int(v) for v in numpy_helper.to_array(attr.t)]
    return found


def _check_expansion(model: onnx.ModelProto) -> None:
    """Refuse an expansion bomb: a tensor sized by constants alone beyond any memory."""
    constants = _constant_ints(model)
    for node in model.graph.node:
        if node.op_type not in ("Expand", "ConstantOfShape") or node.domain not in ("", "ai.onnx"):
            continue
        shape_input = node.input[1] if node.op_type == "Expand" else node.input[0]
        shape = constants.get(shape_input)
        if shape is None:
            continue
        elements = 1
        for dim in shape:
            elements *= max(abs(dim), 1)
        if elements > MAX_CONSTANT_ELEMENTS:
            raise InvalidArtifact(_bomb_message(node, shape, elements))


def _check_fixed_sizes(inferred: onnx.ModelProto) -> None:
    for value in (*inferred.graph.value_info, *inferred.graph.output):
        dims = [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]
        fixed = [d for d in dims if d is not None]
        if dims and len(fixed) == len(dims):
            elements = 1
            for dim in fixed:
                elements *= max(dim, 1)
            if elements > MAX_CONSTANT_ELEMENTS:
                raise InvalidArtifact(
                    f"tensor {value.name!r} has the fixed shape {'×'.join(map(str, dims))} ({elements:.3g} elements): "
                    "no input is small enough for the model to fit in memory (an expansion bomb)"
                )


def _bomb_message(node: onnx.NodeProto, shape: list[int], elements: int) -> str:
    return (
        f"node {node.name or node.op_type!r} ({node.op_type}) builds a tensor of shape "
        f"{'×'.join(map(str, shape))} from constants ({elements:.3g} elements, over "
        f"{MAX_CONSTANT_ELEMENTS:.3g}): it would exhaust memory on any input (an expansion bomb)"
    )


def _explain_inference_failure(detail: str) -> str:
    """ONNX's own wording, with what it means for the uploader first."""
    if "Inferred shape and existing shape differ" in detail:
        return (
            "the model declares a tensor shape that its own operators contradict (often a constant target shape "
            f"of Expand or Reshape that does not match the declared output); ONNX shape inference says: {detail}"
        )
    if "Expand" in detail or "ConstantOfShape" in detail:
        return (
            "an Expand or ConstantOfShape node's target shape cannot be computed or is invalid (negative, "
            f"too large or incompatible with its input); ONNX shape inference says: {detail}"
        )
    return f"ONNX shape inference failed: {detail}"


def _feature_names(model: onnx.ModelProto) -> tuple[str, ...] | None:
    text = next((p.value for p in model.metadata_props if p.key == "feature_names"), None)
    if not text:
        return None
    try:
        names = json.loads(text)
    except json.JSONDecodeError:
        names = [part.strip() for part in text.split(",")]
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise InvalidArtifact("the model's feature_names metadata must be a JSON list of column names")
    return tuple(names)


def _load(path: str) -> tuple[onnx.ModelProto, dict[int, int]]:
    """The model without its large initializers' data, and their data sizes by initializer index.

    External data is never followed either (that would open paths named
    inside the file); _check_structure refuses such models.
    """
    try:
        skeleton = read_skeleton(path)
        return onnx.load_model_from_string(skeleton.data), skeleton.skipped
    except (SkeletonError, DecodeError, RuntimeError, ValueError, UnicodeDecodeError) as exc:
        with open(path, "rb") as fh:
            head = fh.read(64)
        raise InvalidArtifact(_decode_failure(head, exc)) from exc


def _decode_failure(head: bytes, exc: Exception) -> str:
    for magic, what in _SNIFF:
        if head.startswith(magic):
            return f"not an ONNX model: {what}"
    if _looks_like_text(head):
        return f"not an ONNX model: the file is text (starts with {head[:24]!r}), e.g. a CSV or JSON file"
    # An ONNX file opens with ir_version (field 1, varint): 0x08 then a small
    # number. Failing to decode after that opening means a damaged model
    # rather than some other kind of file.
    if len(head) >= 2 and head[0] == 0x08 and 1 <= head[1] <= 30:
        return f"the ONNX model is truncated or corrupt: {_first_line(exc)}"
    return f"not an ONNX model: the bytes do not decode as an ONNX protobuf ({_first_line(exc)})"


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at the 64-byte boundary is still text.
        text = head[:-3].decode("utf-8", errors="replace")
    return bool(text) and all(ch.isprintable() or ch in "\r\n\t" for ch in text)


def _check_structure(model: onnx.ModelProto) -> None:
    if not model.HasField("graph"):
        if model.ir_version == 0:
            # Arbitrary bytes sometimes decode as a protobuf with only unknown
            # fields; without ir_version or graph nothing says "ONNX".
            raise InvalidArtifact("not an ONNX model: no IR version and no graph were found in the file")
        raise InvalidArtifact("the ONNX model has no graph (the file may be truncated)")
    graph = model.graph
    if not graph.node:
        raise InvalidArtifact("the ONNX graph has no nodes")
    if not graph.input:
        raise InvalidArtifact("the ONNX graph has no inputs")
    if not graph.output:
        raise InvalidArtifact("the ONNX graph has no outputs (the file may be truncated)")
    for tensor in graph.initializer:
        if tensor.data_location == TensorProto.EXTERNAL:
            raise InvalidArtifact(
                "the model stores weights in external data files, which cannot be uploaded; "
                "save it as a single .onnx file"
            )


# Element types stored two to a byte.
_PACKED_4BIT = {getattr(TensorProto, n) for n in ("INT4", "UINT4", "FLOAT4E2M1") if hasattr(TensorProto, n)}


def _weights_as_inputs(model: onnx.ModelProto, skipped: dict[int, int]) -> None:
    """Check that each initializer left on disk holds as many bytes as its shape and type need,
    then declare it a graph input of that type and shape, which is all the checker and shape
    inference need from it."""
    from onnx import helper

    graph = model.graph
    listed = {v.name for v in graph.input}
    for index in sorted(skipped, reverse=True):
        tensor = graph.initializer[index]
        if tensor.data_type == TensorProto.STRING:
            raise InvalidArtifact(
                f"initializer {tensor.name!r} is a string tensor stored as raw bytes, which ONNX forbids"
            )
        elements = 1
        for dim in tensor.dims:
            elements *= dim
        try:
            if tensor.data_type in _PACKED_4BIT:
                needed = (elements + 1) // 2
            else:
                needed = elements * helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
        except (KeyError, ValueError, TypeError):
            raise InvalidArtifact(
                f"initializer {tensor.name!r} has the unknown element type {tensor.data_type}"
            ) from None
        if needed != skipped[index]:
            raise InvalidArtifact(
                f"initializer {tensor.name!r} holds {skipped[index]:,} bytes but its shape "
                f"{'×'.join(map(str, tensor.dims)) or 'scalar'} of {onnx_dtype_name(tensor.data_type)} needs "
                f"{needed:,}: the file is damaged"
            )
        if tensor.name not in listed:
            graph.input.append(helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims)))
        del graph.initializer[index]


def _declared(value: onnx.ValueInfoProto) -> bool:
    kind = value.type.WhichOneof("value")
    return kind is not None and (kind != "tensor_type" or value.type.tensor_type.HasField("shape"))


def _value_spec(value: onnx.ValueInfoProto) -> TensorSpec:
    kind = value.type.WhichOneof("value")
    if kind == "tensor_type":
        tensor = value.type.tensor_type
        return TensorSpec(value.name, onnx_dtype_name(tensor.elem_type), _shape(tensor))
    # Sequences and maps (e.g. skl2onnx's ZipMap output) have no tensor shape.
    return TensorSpec(value.name, _type_name(value.type), None)


def _shape(tensor: onnx.TypeProto.Tensor) -> tuple[Dim, ...] | None:
    if not tensor.HasField("shape"):
        return None
    dims: list[Dim] = []
    for dim in tensor.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(int(dim.dim_value))
        elif dim.HasField("dim_param") and dim.dim_param and not _GENERATED_DIM.fullmatch(dim.dim_param):
            dims.append(dim.dim_param)
        else:
            dims.append(None)
    return tuple(dims)


def _type_name(tp: onnx.TypeProto) -> str:
    kind = tp.WhichOneof("value")
    if kind == "tensor_type":
        return onnx_dtype_name(tp.tensor_type.elem_type)
    if kind == "sequence_type":
        return f"seq({_type_name(tp.sequence_type.elem_type)})"
    if kind == "map_type":
        return f"map({onnx_dtype_name(tp.map_type.key_type)},{_type_name(tp.map_type.value_type)})"
    if kind == "optional_type":
        return f"optional({_type_name(tp.optional_type.elem_type)})"
    if kind == "sparse_tensor_type":
        return f"sparse({onnx_dtype_name(tp.sparse_tensor_type.elem_type)})"
    return "unknown"


def _class_labels(graph: onnx.GraphProto) -> tuple[int | str, ...] | None:
    outputs = {o.name for o in graph.output}
    found: list[tuple[bool, tuple[int | str, ...]]] = []
    for node in graph.node:
        if node.domain != _ML_DOMAIN:
            continue
        for attr in node.attribute:
            if attr.name not in _LABEL_ATTRS:
                continue
            labels: tuple[int | str, ...]
            if attr.name == "classlabels_strings":
                labels = tuple(s.decode("utf-8") for s in attr.strings)
            else:
                labels = tuple(int(i) for i in attr.ints)
            if labels:
                found.append((any(o in outputs for o in node.output), labels))
    if not found:
        return None
    # Ensembles hold several classifiers; the one feeding a graph output (or
    # else the last one) decides the column order the caller sees.
    for feeds_output, labels in found:
        if feeds_output:
            return labels
    return found[-1][1]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
