"""JSON Schema of the processing spec, for the API docs (OpenAPI) and form hints.

:func:`workers.engine.processing.spec.parse_processing_spec` is the
authority: it also checks what a schema cannot say well (mean/std length per
channel count, columns that must be feature columns, unique labels, thresholds
in [0, 1] after an activation). The tests check that every canonical spec
validates against this schema and that the schema rejects unknown keys.
"""

from __future__ import annotations

from typing import Any

from workers.engine.processing._input_spec import (
    IMAGE_DTYPES,
    MAX_IMAGE_SIDE,
    MAX_TEXT_LENGTH,
    TABULAR_DTYPES,
    TEXT_DTYPES,
)
from workers.engine.processing._output_spec import ACTIVATIONS, BOX_FORMATS, MAX_DETECTIONS, MAX_TOP_K

__all__ = ["PROCESSING_SPEC_SCHEMA"]

_NAME: dict[str, Any] = {"type": "string", "minLength": 1}
_OPT_NAME: dict[str, Any] = {"type": ["string", "null"], "minLength": 1}
_SIDE: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": MAX_IMAGE_SIDE}
_SIZE: dict[str, Any] = {
    "oneOf": [_SIDE, {"type": "array", "items": _SIDE, "minItems": 2, "maxItems": 2}, {"type": "null"}],
    "description": "An integer (square, or the shorter side for resize_mode 'shorter_side') or [height, width].",
}
_NUMBERS: dict[str, Any] = {"type": "array", "items": {"type": "number"}}
_POSITIVE: dict[str, Any] = {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}}


def _object(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required or [],
        "additionalProperties": False,
        **extra,
    }


_TABULAR = _object(
    {
        "kind": {"const": "tabular"},
        "feature_columns": {"type": "array", "items": _NAME, "minItems": 1, "uniqueItems": True},
        "scaling": {
            "description": "Per column {mean, std}, or {kind: 'standard', mean: [...], std: [...]} over the "
            "numeric feature columns in order.",
            "oneOf": [
                _object({"kind": {"const": "standard"}, "mean": _NUMBERS, "std": _POSITIVE}, ["kind", "mean", "std"]),
                {
                    "type": "object",
                    "additionalProperties": _object(
                        {"mean": {"type": "number"}, "std": {"type": "number", "exclusiveMinimum": 0}},
                        ["mean", "std"],
                    ),
                },
                {"type": "null"},
            ],
        },
        "categories": {
            "description": "Column -> its categories, in one-hot order; compared as text.",
            "type": ["object", "null"],
            "additionalProperties": {
                "type": "array",
                "minItems": 1,
                "uniqueItems": True,
                "items": {"type": ["string", "number"]},
            },
        },
        "unknown_category": {"enum": ["error", "ignore"], "default": "error"},
        "dtype": {"enum": list(TABULAR_DTYPES), "default": "float32"},
        "input_name": _OPT_NAME,
    },
    ["kind", "feature_columns"],
)

_IMAGE = _object(
    {
        "kind": {"const": "image"},
        "color": {"enum": ["rgb", "bgr", "gray"], "default": "rgb"},
        "resize": _SIZE,
        "resize_mode": {"enum": ["shorter_side", "exact", None]},
        "interpolation": {"enum": ["bilinear", "nearest", "bicubic"], "default": "bilinear"},
        "center_crop": _SIZE,
        "scale": {"type": "number", "exclusiveMinimum": 0, "default": 1 / 255},
        "mean": {**_NUMBERS, "minItems": 1, "maxItems": 3, "description": "One per output channel."},
        "std": {**_POSITIVE, "minItems": 1, "maxItems": 3, "description": "One per output channel."},
        "layout": {"enum": ["nchw", "nhwc"], "default": "nchw"},
        "dtype": {"enum": list(IMAGE_DTYPES), "default": "float32"},
        "input_name": _OPT_NAME,
    },
    ["kind"],
)

_TEXT = _object(
    {
        "kind": {"const": "text"},
        "text_column": _NAME,
        "max_length": {"type": "integer", "minimum": 1, "maximum": MAX_TEXT_LENGTH, "default": 128},
        "padding": {"enum": ["max_length", "longest"], "default": "max_length"},
        "truncation": {"type": "boolean", "default": True},
        "add_special_tokens": {"type": "boolean", "default": True},
        "pad_token": _OPT_NAME,
        "dtype": {"enum": list(TEXT_DTYPES), "default": "int64"},
        "input_names": {
            "type": ["object", "null"],
            "properties": {"input_ids": _NAME, "attention_mask": _OPT_NAME, "token_type_ids": _OPT_NAME},
            "additionalProperties": False,
        },
    },
    ["kind", "text_column"],
)

_DETECTION = _object(
    {
        "boxes_output": _NAME,
        "scores_output": _NAME,
        "classes_output": _OPT_NAME,
        "format": {"enum": list(BOX_FORMATS), "default": "xyxy"},
        "score_threshold": {"type": "number", "default": 0.0},
        "iou_threshold": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.5},
        "max_detections": {"type": "integer", "minimum": 1, "maximum": MAX_DETECTIONS, "default": 100},
        "class_agnostic": {"type": "boolean", "default": False},
    },
    ["boxes_output", "scores_output"],
)

_OUTPUT = _object(
    {
        "output_name": _OPT_NAME,
        "activation": {"enum": list(ACTIVATIONS), "default": "none"},
        "top_k": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_TOP_K},
        "labels": {
            "description": "Class index -> label: a list (index = position) or {'0': 'cat', ...}.",
            "oneOf": [
                {"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": True},
                {
                    "type": "object",
                    "minProperties": 1,
                    "propertyNames": {"pattern": "^(0|[1-9][0-9]*)$"},
                    "additionalProperties": {"type": "string"},
                },
                {"type": "null"},
            ],
        },
        "threshold": {"type": ["number", "null"]},
        "detection": {"oneOf": [_DETECTION, {"type": "null"}]},
    }
)

#: JSON Schema (draft 2020-12) of a processing spec.
PROCESSING_SPEC_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "ProcessingSpec",
    "description": "Pre- and post-processing declared with a model version.",
    **_object(
        {
            "version": {"const": 1, "default": 1},
            "input": {"oneOf": [_TABULAR, _IMAGE, _TEXT, {"type": "null"}]},
            "output": {"oneOf": [_OUTPUT, {"type": "null"}]},
        }
    ),
}
