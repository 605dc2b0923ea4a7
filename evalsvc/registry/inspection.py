"""What registration learns from a file: the fields a version stores about it.

Used alike by registration inside a request (small files) and by the worker
that validates a large upload after it was stored (``deferred``). Every
refusal is a :class:`ValidationFailed` with the reason for the uploader.
"""

from __future__ import annotations

from typing import Any

from evalsvc.core.exceptions import ValidationFailed
from workers.engine.datasets import inspect_dataset, validate_label_column
from workers.engine.errors import EngineError
from workers.engine.formats import inspect_model


def model_facts(
    *,
    path: str,
    fmt: str,
    weights_path: str | None,
    processing: dict[str, Any] | None,
    tokenizer_path: str | None,
    feature_names: list[str] | None,
) -> dict[str, Any]:
    """Validate a model file with its companions; return the ModelVersion fields it determines."""
    try:
        info = inspect_model(path, fmt, weights_path=weights_path)
        spec = validate_processing(processing, tokenizer_path=tokenizer_path)
    except EngineError as exc:
        raise ValidationFailed(exc.message) from None
    _refuse_two_label_maps(info.class_labels, spec)
    features, features_source = resolve_feature_names(
        declared=feature_names, processing=spec, from_model=info.feature_names, inputs=info.inputs
    )
    return {
        "inputs": [_tensor(t) for t in info.inputs],
        "outputs": [_tensor(t) for t in info.outputs],
        "opset": info.opset,
        "ir_version": info.ir_version,
        "producer_name": info.producer_name,
        "producer_version": info.producer_version,
        "class_labels": list(info.class_labels) if info.class_labels is not None else None,
        "feature_names": features,
        "feature_names_source": features_source,
        "processing": spec,
    }


def dataset_facts(*, path: str, fmt: str, label_column: str) -> dict[str, Any]:
    """Validate a data set file (streamed); return the DatasetVersion fields it determines."""
    try:
        info = inspect_dataset(path, fmt)
        if label_column:
            validate_label_column(info, label_column)
    except EngineError as exc:
        raise ValidationFailed(exc.message) from None
    return {
        "rows": info.rows,
        "columns": [{"name": c.name, "dtype": c.dtype, "missing": c.missing} for c in info.columns],
        "extra": dict(info.extra or {}),
    }


def _refuse_two_label_maps(class_labels: Any, spec: dict[str, Any] | None) -> None:
    """A model that names its classes and a spec that names them again: which would a report believe?"""
    declared = ((spec or {}).get("output") or {}).get("labels")
    if class_labels is None or declared is None:
        return
    shown = ", ".join(repr(label) for label in list(class_labels)[:5]) + (", …" if len(class_labels) > 5 else "")
    raise ValidationFailed(
        f"the model names its classes itself (ONNX-ML class labels: {shown}) and the processing spec's "
        "output.labels gives a second label map; keep one: remove output.labels (the model's own labels "
        "are used), or export the model without class labels"
    )


def clean_feature_names(value: Any) -> list[str]:
    """A list of distinct, non-empty column names, or a 400 saying what is wrong."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValidationFailed("feature_names must be a non-empty list of column names")
    names = [v.strip() for v in value]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValidationFailed(f"feature_names repeats {', '.join(repeated)}")
    return names


def resolve_feature_names(
    *, declared: list[str] | None, processing: dict[str, Any] | None, from_model: Any, inputs: Any
) -> tuple[list[str] | None, str]:
    """The model's feature columns and their source: declared, its tabular processing spec, or its file."""
    spec_columns = ((processing or {}).get("input") or {}).get("feature_columns")
    if declared is not None:
        names = clean_feature_names(declared)
        if spec_columns and list(spec_columns) != names:
            raise ValidationFailed(
                f"feature_names ({', '.join(names)}) differ from the columns the processing spec reads "
                f"({', '.join(spec_columns)}); leave feature_names out"
            )
        width = _input_width(inputs)
        if not spec_columns and width is not None and width != len(names):
            raise ValidationFailed(
                f"the model's input takes {width} features but {len(names)} feature_names were given"
            )
        return names, "declared"
    if spec_columns:
        return list(spec_columns), "processing"
    if from_model:
        return list(from_model), "model"
    return None, ""


def _input_width(inputs: Any) -> int | None:
    """Features of a single rank-2 input (a TensorSpec, or its stored dict), if fixed."""
    if len(inputs) != 1:
        return None
    shape = inputs[0].get("shape") if isinstance(inputs[0], dict) else inputs[0].shape
    if shape is None or len(shape) != 2:
        return None
    return shape[1] if isinstance(shape[1], int) else None


def validate_processing(processing: dict[str, Any] | None, *, tokenizer_path: str | None) -> dict[str, Any] | None:
    """Check a declared processing spec (and the tokenizer it needs); return its normalised form."""
    if processing is None:
        if tokenizer_path:
            raise ValidationFailed("a tokenizer was uploaded but no text processing spec says how to use it")
        return None
    from workers.engine.processing import load_tokenizer, parse_processing_spec

    spec = parse_processing_spec(processing)
    wants_text = getattr(spec.input, "kind", None) == "text"
    if wants_text and not tokenizer_path:
        raise ValidationFailed("a text processing spec needs the model's tokenizer.json uploaded as 'tokenizer'")
    if tokenizer_path:
        if not wants_text:
            raise ValidationFailed("a tokenizer was uploaded but the processing spec's input is not text")
        load_tokenizer(tokenizer_path)
    return spec.to_dict()


def _tensor(spec: Any) -> dict[str, Any]:
    return {"name": spec.name, "dtype": spec.dtype, "shape": list(spec.shape) if spec.shape is not None else None}
