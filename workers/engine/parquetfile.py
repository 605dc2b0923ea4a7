"""Parquet inspection and batched reading through pyarrow.

pyarrow is imported on first use so that a worker without it (or with a
broken install) still serves CSV, and says why Parquet is unavailable.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from workers.engine.errors import EngineError, InvalidDataset
from workers.engine.tabular import (
    PANDAS_DTYPES,
    check_column_names,
    first_line,
    list_names,
)
from workers.engine.types import ColumnInfo, DatasetInfo

__all__ = ["inspect_parquet", "iter_parquet", "open_parquet"]

_SCAN_ROWS = 65_536


def _pyarrow() -> Any:
    """Import pyarrow, or say why Parquet cannot be read on this worker."""
    try:
        import pyarrow
        import pyarrow.compute
        import pyarrow.parquet  # the submodule is what is needed
    except ImportError as exc:
        # A worker problem, not the user's: another worker may have it.
        raise EngineError(f"Parquet support is unavailable on this worker: {exc}", permanent=False) from exc
    return pyarrow


def open_parquet(path: str) -> Any:
    """Open ``path`` as a ``pyarrow.parquet.ParquetFile``; raise :class:`InvalidDataset` if it is not one."""
    pa = _pyarrow()
    if os.path.getsize(path) == 0:
        raise InvalidDataset("the file is empty")
    try:
        return pa.parquet.ParquetFile(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InvalidDataset(f"not a Parquet file: {first_line(exc)}") from exc


def _arrow_dtype(tp: Any) -> str:
    pa = _pyarrow()
    if pa.types.is_dictionary(tp):
        tp = tp.value_type
    if pa.types.is_integer(tp):
        return "int64"
    if pa.types.is_floating(tp):
        return "float64"
    if pa.types.is_boolean(tp):
        return "bool"
    return "string"


def inspect_parquet(path: str) -> DatasetInfo:
    """Describe a Parquet file: rows from the footer, missing values (nulls and NaN) by scanning batches."""
    pa = _pyarrow()
    pf = open_parquet(path)
    schema = pf.schema_arrow
    names = list(schema.names)
    if not names:
        raise InvalidDataset("the Parquet file has no columns")
    check_column_names(names)
    rows = int(pf.metadata.num_rows)
    if rows == 0:
        raise InvalidDataset("no data rows: the Parquet file has a schema but no rows")
    dtypes = [_arrow_dtype(f.type) for f in schema]
    missing = [0] * len(names)
    try:
        for batch in pf.iter_batches(batch_size=_SCAN_ROWS):
            for i, column in enumerate(batch.columns):
                missing[i] += column.null_count
                if dtypes[i] == "float64" and not pa.types.is_dictionary(column.type):
                    # NaN is missing too, and arrow does not count it as null.
                    nans = pa.compute.sum(pa.compute.is_nan(column)).as_py()
                    missing[i] += int(nans or 0)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidDataset(f"the Parquet file is corrupt: {first_line(exc)}") from exc
    columns = tuple(ColumnInfo(n, t, m) for n, t, m in zip(names, dtypes, missing, strict=True))
    return DatasetInfo(format="parquet", rows=rows, columns=columns)


def iter_parquet(
    path: str, batch_size: int, columns: list[str] | None, dtypes: Mapping[str, str]
) -> Iterator[pd.DataFrame]:
    """Yield ``path``'s rows as DataFrames of at most ``batch_size`` rows (see ``datasets.iter_batches``)."""
    pa = _pyarrow()
    pf = open_parquet(path)
    if columns is not None:
        unknown = [c for c in columns if c not in pf.schema_arrow.names]
        if unknown:
            raise InvalidDataset(f"columns not in the data set: {list_names(unknown)}")
    casts = {c: PANDAS_DTYPES[t] for c, t in dtypes.items()}
    try:
        for batch in pf.iter_batches(batch_size=batch_size, columns=columns):
            frame = batch.to_pandas()
            if columns is not None:
                frame = frame[columns]
            for name, target in casts.items():
                if name in frame.columns:
                    frame[name] = _cast(frame[name], target)
            yield frame
    except (pa.ArrowException, OSError) as exc:
        raise InvalidDataset(f"the Parquet file is corrupt: {first_line(exc)}") from exc


def _cast(values: pd.Series, target: Any) -> pd.Series:
    if target is str:
        # astype(str) would turn a missing value into the text "nan"; keep it
        # missing, as the CSV reader does.
        return values.astype(str).where(values.notna(), np.nan)
    return values.astype(target)
