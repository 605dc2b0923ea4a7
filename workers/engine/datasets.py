"""Streaming inspection and reading of data sets: CSV, Parquet and ImageFolder zips.

Data sets can be far larger than a worker's memory, so nothing here reads a
whole file: inspection walks the rows once, and :func:`iter_batches` yields
bounded :class:`pandas.DataFrame` batches.

The format modules (:mod:`workers.engine.csvfile`,
:mod:`workers.engine.parquetfile`, :mod:`workers.engine.imagefolder`) do the
work; callers use this one. An ImageFolder zip reads as two text columns,
``image`` (the name in the zip) and ``label``; the pixels come from
:func:`workers.engine.imagefolder.iter_image_files`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

import pandas as pd

from workers.engine.csvfile import MISSING_TOKENS, count_csv_rows, inspect_csv, iter_csv
from workers.engine.errors import InvalidDataset
from workers.engine.parquetfile import inspect_parquet, iter_parquet, open_parquet
from workers.engine.tabular import list_names
from workers.engine.types import DatasetInfo, DatasetRef

__all__ = [
    "DATASET_FORMATS",
    "MISSING_TOKENS",
    "count_rows",
    "inspect_dataset",
    "iter_batches",
    "validate_label_column",
]

DATASET_FORMATS: tuple[str, ...] = ("csv", "parquet", "imagefolder")


def inspect_dataset(path: str, fmt: str) -> DatasetInfo:
    """Validate a data set file and describe its columns, reading it as a stream.

    Parameters
    ----------
    path:
        Local path of the file.
    fmt:
        ``"csv"`` (UTF-8, optional BOM, header row required), ``"parquet"``
        or ``"imagefolder"`` (a zip of class folders).

    Returns
    -------
    DatasetInfo
        Row count and, per column, its name, inferred dtype (``"int64"``,
        ``"float64"``, ``"bool"`` or ``"string"``) and missing-value count.

    Raises
    ------
    InvalidDataset
        When the file is empty, unreadable in the declared format, lacks a
        header or data rows, has duplicate or empty column names, ragged rows
        or bytes that are not UTF-8. The message says where.
    """
    if fmt not in DATASET_FORMATS:
        raise InvalidDataset(f"unsupported data set format {fmt!r}; supported: {', '.join(DATASET_FORMATS)}")
    if os.path.getsize(path) == 0:
        raise InvalidDataset("the file is empty")
    if fmt == "imagefolder":
        # Imported here so CSV/Parquet-only callers never load Pillow.
        from workers.engine.imagefolder import inspect_image_zip

        return inspect_image_zip(path)
    return inspect_csv(path) if fmt == "csv" else inspect_parquet(path)


def validate_label_column(info: DatasetInfo, label: str) -> None:
    """Raise :class:`InvalidDataset` unless ``label`` names a column of ``info``."""
    names = [c.name for c in info.columns]
    if label not in names:
        raise InvalidDataset(f"label column {label!r} is not in the data set; columns are: {list_names(names)}")


def iter_batches(
    ref: DatasetRef,
    batch_size: int,
    columns: list[str] | None = None,
    *,
    dtypes: Mapping[str, str] | None = None,
) -> Iterator[pd.DataFrame]:
    """Yield the rows of a data set in order as DataFrames of at most ``batch_size`` rows.

    Parameters
    ----------
    ref:
        The data set; ``ref.format`` is ``"csv"``, ``"parquet"`` or
        ``"imagefolder"`` (columns ``image`` and ``label``, no image data).
    batch_size:
        Upper bound on rows per batch. Parquet batches may be shorter at
        row-group boundaries.
    columns:
        Columns to read, in the order wanted; ``None`` reads all of them.
    dtypes:
        Optional column -> ``"string"``/``"float64"``/``"int64"``/``"bool"``.
        Without it CSV types are guessed per batch by pandas and may differ
        between batches (a column could be int64 in one and float64 in the
        next), so callers that care should pin them.

    Raises
    ------
    InvalidDataset
        For unknown columns or a file that cannot be parsed.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if columns is not None and ref.columns:
        unknown = [c for c in columns if c not in ref.columns]
        if unknown:
            raise InvalidDataset(
                f"columns not in the data set: {list_names(unknown)}; columns are: {list_names(list(ref.columns))}"
            )
    if ref.format == "csv":
        yield from iter_csv(ref.path, batch_size, columns, dtypes or {})
    elif ref.format == "parquet":
        yield from iter_parquet(ref.path, batch_size, columns, dtypes or {})
    elif ref.format == "imagefolder":
        from workers.engine.imagefolder import iter_image_names

        yield from iter_image_names(ref, batch_size, columns)
    else:
        raise InvalidDataset(f"unsupported data set format {ref.format!r}; supported: {', '.join(DATASET_FORMATS)}")


def count_rows(ref: DatasetRef) -> int:
    """Return the number of data rows, cheaply for Parquet and by one streamed pass for CSV."""
    if ref.rows is not None:
        return ref.rows
    if ref.format == "parquet":
        return int(open_parquet(ref.path).metadata.num_rows)
    if ref.format == "csv":
        return count_csv_rows(ref.path)
    if ref.format == "imagefolder":
        from workers.engine.imagefolder import count_images

        return count_images(ref.path)
    raise InvalidDataset(f"unsupported data set format {ref.format!r}; supported: {', '.join(DATASET_FORMATS)}")
