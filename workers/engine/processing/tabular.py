"""Tabular input: feature columns in order, standard scaling and one-hot categories.

The result depends only on the rows given and the spec, never on other rows
or batches, so the same rows give the same matrix in every job and backend.
Arithmetic is float64 (``(x - mean) / std``, as scikit-learn's
``StandardScaler``), cast to the spec's dtype at the end.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from workers.engine.arrays import Array
from workers.engine.errors import InvalidDataset
from workers.engine.labels import coerce_labels
from workers.engine.processing.spec import TabularInput
from workers.engine.tabular import list_names

__all__ = ["DEFAULT_INPUT_NAME", "prepare_tabular", "tabular_column_names"]

#: Key of the prepared array when the spec names no model input.
DEFAULT_INPUT_NAME = "input"


def prepare_tabular(frame: pd.DataFrame, spec: TabularInput, *, row_offset: int = 0) -> dict[str, Array]:
    """Build the model input from a batch of rows.

    Parameters
    ----------
    frame:
        The rows; it must hold every column of ``spec.feature_columns``
        (other columns are ignored).
    spec:
        Column order, scaling and categories.
    row_offset:
        Rows before this batch in the data set, so messages give the data
        row number (1-based) a user can find in their file.

    Returns
    -------
    dict
        ``{spec.input_name or "input": array}`` of shape ``(rows, spec.width)``
        and dtype ``spec.dtype``. Each categorical column becomes one 0/1
        column per category, in the spec's order, at its place among the
        feature columns; an unknown category is all zeros with
        ``unknown_category="ignore"``.

    Raises
    ------
    InvalidDataset
        (permanent) for a missing column, a missing value, text in a numeric
        column, or an unknown category with ``unknown_category="error"``;
        the message names the column, the value and the data row.
    """
    absent = [c for c in spec.feature_columns if c not in frame.columns]
    if absent:
        raise InvalidDataset(f"the data set lacks the feature columns the processing spec needs: {list_names(absent)}")
    categories = dict(spec.categories)
    scaling = {column: (mean, std) for column, mean, std in spec.scaling}
    n = len(frame)
    out = np.empty((n, spec.width), dtype=np.float64)
    at = 0
    for column in spec.feature_columns:
        values = frame[column]
        _check_missing(values, column, row_offset)
        if column in categories:
            cats = categories[column]
            out[:, at : at + len(cats)] = _one_hot(values, column, cats, spec.unknown_category, row_offset)
            at += len(cats)
        else:
            x = _numbers(values, column, row_offset)
            if column in scaling:
                mean, std = scaling[column]
                x = (x - mean) / std
            out[:, at] = x
            at += 1
    return {spec.input_name or DEFAULT_INPUT_NAME: np.ascontiguousarray(out.astype(spec.dtype, copy=False))}


def tabular_column_names(spec: TabularInput) -> list[str]:
    """Names of the model input's columns: ``"city=Paris"`` for a one-hot column, else the feature column."""
    categories = dict(spec.categories)
    names: list[str] = []
    for column in spec.feature_columns:
        if column in categories:
            names.extend(f"{column}={c}" for c in categories[column])
        else:
            names.append(column)
    return names


def _check_missing(values: pd.Series, column: str, offset: int) -> None:
    na = values.isna().to_numpy()
    if na.any():
        first = offset + int(np.argmax(na)) + 1
        raise InvalidDataset(
            f"column {column!r} has {int(na.sum())} missing value{'s' if na.sum() != 1 else ''} "
            f"(first in data row {first}); the processing spec cannot fill them"
        )


def _numbers(values: pd.Series, column: str, offset: int) -> Array:
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
        return np.asarray(values.to_numpy(dtype=np.float64))
    parsed = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(parsed)
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidDataset(
            f"column {column!r} holds {values.iloc[i]!r} in data row {offset + i + 1}, which is not a number; "
            "give the column categories in the processing spec if it is categorical"
        )
    return np.asarray(parsed)


def _one_hot(values: pd.Series, column: str, cats: tuple[str, ...], unknown: str, offset: int) -> Array:
    text = coerce_labels(values.to_numpy(), "str", f"column {column!r}")
    # pandas matches every value against the categories in one hashed pass.
    codes = pd.Categorical(text, categories=list(cats)).codes.astype(np.int64)
    bad = codes < 0
    if bad.any() and unknown == "error":
        i = int(np.argmax(bad))
        raise InvalidDataset(
            f"column {column!r} holds the category {text[i]!r} in data row {offset + i + 1}, which the "
            f"processing spec does not list (categories: {list_names(list(cats))}); add it to the spec or set "
            "unknown_category to 'ignore'"
        )
    onehot = np.zeros((len(codes), len(cats)), dtype=np.float64)
    rows = np.flatnonzero(~bad)
    onehot[rows, codes[rows]] = 1.0
    return onehot
