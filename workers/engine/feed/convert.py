"""Feature columns to one model input: the element types tabular rows can feed, and the checks.

Every job converts rows with these rules, so a model that evaluates also
runs its parity, quantization and profile jobs on the same arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from workers.engine.arrays import Array
from workers.engine.errors import EngineError
from workers.engine.tabular import list_names
from workers.engine.types import TensorSpec

__all__ = ["INPUT_DTYPES", "column_type", "describe_inputs", "tabular_input", "to_matrix"]

#: Model input element type -> numpy dtype of the array the feed builds.
INPUT_DTYPES: dict[str, Any] = {
    "float32": np.float32,
    "float64": np.float64,
    "float16": np.float16,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "uint32": np.uint32,
    "uint64": np.uint64,
    "bool": np.bool_,
    "string": object,
}


def describe_inputs(inputs: Sequence[TensorSpec]) -> str:
    return "; ".join(f"{s.name} {s.dtype}{list(s.shape) if s.shape else '[?]'}" for s in inputs)


def tabular_input(inputs: Sequence[TensorSpec], features: Sequence[str]) -> TensorSpec:
    """The model's single rows x features input, checked against the feature columns.

    Raises
    ------
    EngineError
        (permanent) unless the model takes exactly one 2-D input (or one of
        unknown rank) of a type rows can feed, as wide as ``features``.
    """
    described = describe_inputs(inputs)
    if len(inputs) != 1:
        raise EngineError(f"the model must take exactly one input, a rows x features table; it takes: {described}")
    spec = inputs[0]
    # Unknown rank is let through: the runtime will say if 2-D is wrong.
    if spec.shape is not None and len(spec.shape) != 2:
        raise EngineError(f"the model input must be 2-D (rows x features); it has: {described}")
    if spec.dtype not in INPUT_DTYPES:
        raise EngineError(f"the model input {spec.name!r} has type {spec.dtype}, which tabular data cannot feed")
    width = spec.shape[1] if spec.shape else None
    if isinstance(width, int) and width != len(features):
        raise EngineError(
            f"the model input {spec.name!r} takes {width} features but {len(features)} feature columns "
            f"were given ({list_names(list(features))})"
        )
    return spec


def column_type(spec: TensorSpec, data_format: str) -> str:
    """How the reader should deliver feature columns for this input (see ``reader.ColumnType``)."""
    dtype = INPUT_DTYPES[spec.dtype]
    if dtype is object:
        return "text"
    if np.dtype(dtype).kind in "iu" and data_format == "parquet":
        return "any"  # integers beyond 2**53 stay exact
    return "number"


def to_matrix(columns: Mapping[str, Array], features: Sequence[str], spec: TensorSpec) -> Array:
    """One C-contiguous ``rows x features`` array of the input's element type.

    Raises
    ------
    EngineError
        When a column holds values the input cannot take (text for a number,
        a fraction for an integer); the message names the column and a value.
    """
    dtype = INPUT_DTYPES[spec.dtype]
    arrays = [columns[name] for name in features]
    rows = len(arrays[0]) if arrays else 0
    if dtype is object:
        out = np.empty((rows, len(arrays)), dtype=object)
        for j, values in enumerate(arrays):
            out[:, j] = values if values.dtype == object else pd.Series(values).astype(str).to_numpy(dtype=object)
        return out
    target = np.dtype(dtype)
    out = np.empty((rows, len(arrays)), dtype=target)
    for j, values in enumerate(arrays):
        if values.dtype == object:
            values = _numbers(values, features[j], spec)
        if target.kind in "iu" and values.dtype.kind == "f" and not _integral(values):
            bad = values[values != np.round(values)]
            raise EngineError(_cannot_take(features[j], spec, bad[0].item()))
        out[:, j] = values
    return out


def _integral(values: Array) -> bool:
    return bool((values == np.round(values)).all())


def _numbers(values: Array, column: str, spec: TensorSpec) -> Array:
    numeric = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(numeric) & ~pd.isna(values)
    if bad.any():
        raise EngineError(_cannot_take(column, spec, values[int(np.argmax(bad))]))
    return np.asarray(numeric)


def _cannot_take(column: str, spec: TensorSpec, value: Any) -> str:
    return f"column {column!r} holds values the model input {spec.name!r} ({spec.dtype}) cannot take, e.g. {value!r}"
