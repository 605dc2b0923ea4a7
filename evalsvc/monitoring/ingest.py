"""Production rows for a monitor: JSON rows, or a CSV or Parquet batch, checked and stored whole."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pandas as pd
from django.conf import settings

from evalsvc.core.exceptions import ValidationFailed

#: Characters in a row id (they are indexed).
MAX_ROW_ID = 200


def max_batch_bytes() -> int:
    return int(getattr(settings, "EVALSVC_MONITOR_BATCH_MAX_MB", 64)) * 1024 * 1024


def max_batch_rows() -> int:
    return int(getattr(settings, "EVALSVC_MONITOR_BATCH_MAX_ROWS", 1_000_000))


def frame_from_rows(rows: Any) -> pd.DataFrame:
    if not isinstance(rows, list) or not rows:
        raise ValidationFailed("rows must be a non-empty list of objects (column → value)")
    bad = next((i for i, r in enumerate(rows) if not isinstance(r, dict)), None)
    if bad is not None:
        raise ValidationFailed(f"rows[{bad}] is not an object")
    keys = set(rows[0])
    ragged = next((i for i, r in enumerate(rows) if set(r) != keys), None)
    if ragged is not None:
        raise ValidationFailed(f"rows[{ragged}] has other columns than rows[0]")
    return pd.DataFrame.from_records(rows)


def frame_from_file(name: str, data: bytes) -> pd.DataFrame:
    lower = name.lower()
    try:
        if lower.endswith(".parquet") or data[:4] == b"PAR1":
            return pd.read_parquet(io.BytesIO(data))
        return pd.read_csv(io.BytesIO(data))
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ValidationFailed(f"the batch file could not be read as CSV or Parquet: {exc}") from None


def checked_frame(
    frame: pd.DataFrame, *, columns: list[str], dtypes: dict[str, str], row_id_column: str = ""
) -> pd.DataFrame:
    """The batch with the monitor's columns in order (and its row ids); 400 naming what does not match."""
    got = [str(c) for c in frame.columns]
    expected = columns + ([row_id_column] if row_id_column and row_id_column not in columns else [])
    missing = [c for c in expected if c not in got]
    extra = [c for c in got if c not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected {', '.join(extra)}")
        raise ValidationFailed(f"the batch's columns do not match the monitor's reference: {'; '.join(parts)}")
    if frame.shape[0] == 0:
        raise ValidationFailed("the batch has no rows")
    if frame.shape[0] > max_batch_rows():
        raise ValidationFailed(f"the batch has {frame.shape[0]} rows; at most {max_batch_rows()} per request")
    frame = frame.rename(columns=str)[expected]
    if row_id_column:
        frame[row_id_column] = _row_ids(frame[row_id_column], row_id_column)
    for name in columns:
        dtype = dtypes.get(name, "string")
        if dtype in ("int64", "float64"):
            try:
                values = pd.to_numeric(frame[name], errors="raise")
            except (ValueError, TypeError):
                raise ValidationFailed(f"column {name!r} must be numeric, as in the reference") from None
            if dtype == "int64":
                if (values.dropna() % 1 != 0).any():
                    raise ValidationFailed(f"column {name!r} must hold integers, as in the reference")
                values = values.astype("Int64")
            frame[name] = values.astype("float64") if dtype == "float64" else values
        elif dtype == "bool":
            frame[name] = frame[name].astype("boolean")
        else:
            frame[name] = frame[name].astype("string")
    return frame


def _row_ids(ids: pd.Series, column: str) -> pd.Series:
    """A batch's row ids as text: every row has one, and no two rows share it."""
    if ids.isna().any():
        raise ValidationFailed(f"row {int(ids.isna().to_numpy().argmax())} has no {column!r} (its row id)")
    as_text = ids.astype("string")
    long = as_text[as_text.str.len() > MAX_ROW_ID]
    if len(long):
        raise ValidationFailed(f"row id {long.iloc[0][:40]!r}… is longer than {MAX_ROW_ID} characters")
    duplicated = as_text[as_text.duplicated()]
    if len(duplicated):
        raise ValidationFailed(f"row id {duplicated.iloc[0]!r} appears more than once in the batch")
    return as_text


def to_parquet(frame: pd.DataFrame) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    data = buffer.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def read_batch(data: bytes | memoryview) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(bytes(data)))


def label_values(labels: Any, *, task: str) -> pd.Series:
    """Labels as sent (a list of scalars), typed: numbers for regression, integers or text for classes."""
    if not isinstance(labels, list) or not labels:
        raise ValidationFailed("labels must be a non-empty list of values")
    bad = next((i for i, v in enumerate(labels) if v is None or isinstance(v, (dict, list))), None)
    if bad is not None:
        raise ValidationFailed(f"labels[{bad}] is not a single value")
    if len(labels) > max_batch_rows():
        raise ValidationFailed(f"{len(labels)} labels; at most {max_batch_rows()} per request")
    values = pd.Series(labels)
    numeric = pd.to_numeric(values, errors="coerce")
    if task == "regression":
        if numeric.isna().any():
            i = int(numeric.isna().to_numpy().argmax())
            raise ValidationFailed(f"labels[{i}] must be a number: the monitor's model is a regressor")
        return numeric.astype("float64")
    if not numeric.isna().any() and (numeric % 1 == 0).all() and not values.map(lambda v: type(v) is str).any():
        return numeric.astype("int64")
    return values.astype(str).astype("string")


def labels_parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()
