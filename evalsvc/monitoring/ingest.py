"""Production rows for a monitor: JSON rows, or a CSV or Parquet batch, checked and stored whole."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pandas as pd
from django.conf import settings

from evalsvc.core.exceptions import ValidationFailed


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


def checked_frame(frame: pd.DataFrame, *, columns: list[str], dtypes: dict[str, str]) -> pd.DataFrame:
    """The batch with the monitor's columns in order; 400 naming what does not match."""
    got = [str(c) for c in frame.columns]
    missing = [c for c in columns if c not in got]
    extra = [c for c in got if c not in columns]
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
    frame = frame.rename(columns=str)[columns]
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


def to_parquet(frame: pd.DataFrame) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    data = buffer.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def read_batch(data: bytes | memoryview) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(bytes(data)))
