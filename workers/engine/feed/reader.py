"""Reading a data set in large column blocks: CSV and Parquet through Arrow, ImageFolder zips by name.

A block is a few megabytes of rows turned into one numpy array per column,
once. Inference batches are slices of those arrays (see
:mod:`workers.engine.feed.core`), so the reader's block size never depends on
the batch size a job runs the model with.

CSV goes through Arrow's parser a few megabytes at a time
(:class:`workers.engine.csvchunks.CsvChunks`), with exact (correctly
rounded) float parsing and explicit column types, so memory stays bounded by
the block size and a column has one type in every block. Whatever
Arrow refuses (text in a number column, spaces around numbers, a ragged row)
is read again from that block on by the pandas parser, which either accepts
it as the service always has or raises the message users know.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from workers.engine.arrays import Array
from workers.engine.csvchunks import BLOCK_BYTES, CsvChunks, column_array
from workers.engine.csvfile import MISSING_VARIANTS, utf8_error
from workers.engine.errors import InvalidDataset
from workers.engine.parquetfile import open_parquet
from workers.engine.tabular import PANDAS_DTYPES, first_line, list_names
from workers.engine.types import DatasetRef

__all__ = ["BLOCK_BYTES", "BLOCK_CELLS", "ColumnType", "RawBlock", "read_blocks"]

#: Cells (rows x columns) per Parquet or fallback block.
BLOCK_CELLS = 1 << 20

#: How a column is wanted: ``"number"`` (float64 where the file holds numbers
#: or booleans, missing as NaN), ``"text"`` (object array of str, missing as
#: None), ``"label"`` (integers where the file types them so, else text) or
#: ``"any"`` (as the file types it).
ColumnType = Literal["number", "text", "label", "any"]

_TRUE = ["true", "True", "TRUE"]
_FALSE = ["false", "False", "FALSE"]


@dataclass
class RawBlock:
    """Consecutive rows of a data set, one array per column.

    ``offset`` counts the data rows before the block (0 for the first), so
    data row ``offset + i + 1`` is row ``i`` here, as messages number them.
    ``missing`` marks missing values per column (``None``: none missing).
    """

    offset: int
    rows: int
    columns: dict[str, Array]
    missing: dict[str, Array | None]


def read_blocks(
    ref: DatasetRef,
    columns: list[str],
    types: Mapping[str, ColumnType],
    *,
    start: int = 0,
    stop: int | None = None,
    block_rows: int | None = None,
) -> Iterator[RawBlock]:
    """Yield the rows ``start`` to ``stop`` (data row indices, 0-based) of ``columns`` in blocks.

    Parameters
    ----------
    ref:
        A CSV, Parquet or ImageFolder data set (an ImageFolder zip reads as
        its ``image`` and ``label`` columns of names; pixels are read later).
    columns:
        Columns to read, in the order wanted.
    types:
        How each column is wanted (default ``"any"``).
    start, stop:
        The row range; Parquet skips whole row groups before ``start``, CSV
        parses them.
    block_rows:
        Rows per block instead of the size-based default.

    Raises
    ------
    InvalidDataset
        For unknown columns or a file that cannot be parsed (the message
        says where).
    """
    if ref.columns:
        unknown = [c for c in columns if c not in ref.columns]
        if unknown:
            raise InvalidDataset(
                f"columns not in the data set: {list_names(unknown)}; columns are: {list_names(list(ref.columns))}"
            )
    if ref.format == "csv":
        blocks = _csv_blocks(ref.path, columns, types, block_rows)
    elif ref.format == "parquet":
        blocks = _parquet_blocks(ref.path, columns, types, block_rows, start)
    elif ref.format == "imagefolder":
        blocks = _image_name_blocks(ref, columns, block_rows or 4096)
    else:
        raise InvalidDataset(f"unsupported data set format {ref.format!r}")
    yield from _window(blocks, start, stop)


def _window(blocks: Iterator[RawBlock], start: int, stop: int | None) -> Iterator[RawBlock]:
    for block in blocks:
        end = block.offset + block.rows
        if end <= start:
            continue
        if stop is not None and block.offset >= stop:
            return
        lo = max(start - block.offset, 0)
        hi = block.rows if stop is None else min(stop - block.offset, block.rows)
        yield block if (lo, hi) == (0, block.rows) else _slice(block, lo, hi)
        if stop is not None and end >= stop:
            return


def _slice(block: RawBlock, lo: int, hi: int) -> RawBlock:
    return RawBlock(
        offset=block.offset + lo,
        rows=hi - lo,
        columns={k: v[lo:hi] for k, v in block.columns.items()},
        missing={k: (None if v is None else v[lo:hi]) for k, v in block.missing.items()},
    )


# ---------------------------------------------------------------- CSV


def _pa() -> Any:
    import pyarrow
    import pyarrow.compute
    import pyarrow.csv  # the submodule is what is needed

    return pyarrow


def _csv_blocks(
    path: str, columns: list[str], types: Mapping[str, ColumnType], block_rows: int | None
) -> Iterator[RawBlock]:
    pa = _pa()
    # A column has one type in every block: numbers are parsed as float64,
    # text and labels kept as written ("1" and 1.0 never meet).
    arrow_types = {c: pa.float64() if types.get(c) == "number" else pa.string() for c in columns if c in types}
    convert = pa.csv.ConvertOptions(
        include_columns=columns,
        column_types=arrow_types,
        null_values=MISSING_VARIANTS,
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        true_values=_TRUE,
        false_values=_FALSE,
    )
    done = 0
    try:
        for table in CsvChunks(path, convert, block_bytes=BLOCK_BYTES if block_rows is None else 1 << 20):
            if table.num_rows == 0:
                continue
            yield from _split(_arrow_block(table, columns, types, done), block_rows)
            done += table.num_rows
        return
    except pa.ArrowKeyError as exc:
        raise InvalidDataset(f"columns not in the data set: {first_line(exc)}") from exc
    except pa.ArrowInvalid as exc:
        text = str(exc)
        if "UTF8" in text or "utf8" in text or "UTF-8" in text:
            raise InvalidDataset(utf8_error(path)) from exc
        if done == 0 and "Empty CSV file" in text:
            raise InvalidDataset("the file is empty") from exc
    # Arrow refused something from here on: the pandas parser reads the rest,
    # accepting what the service always has and naming what it cannot read.
    yield from _pandas_csv_blocks(path, columns, types, block_rows, resume_at=done)


def _split(block: RawBlock, block_rows: int | None) -> Iterator[RawBlock]:
    if block_rows is None or block.rows <= block_rows:
        yield block
        return
    for lo in range(0, block.rows, block_rows):
        yield _slice(block, lo, min(lo + block_rows, block.rows))


def _arrow_block(batch: Any, columns: list[str], types: Mapping[str, ColumnType], offset: int) -> RawBlock:
    arrays: dict[str, Array] = {}
    missing: dict[str, Array | None] = {}
    for name in columns:
        arrays[name], missing[name] = _from_arrow(column_array(batch, name), types.get(name, "any"))
    return RawBlock(offset=offset, rows=batch.num_rows, columns=arrays, missing=missing)


def _from_arrow(column: Any, wanted: ColumnType) -> tuple[Array, Array | None]:
    pa = _pa()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    nulls = column.null_count
    missing = column.is_null().to_numpy(zero_copy_only=False) if nulls else None
    tp = column.type
    if pa.types.is_floating(tp):
        values = column.to_numpy(zero_copy_only=False)
        if values.dtype != np.float64:
            values = values.astype(np.float64)
        nan = np.isnan(values)
        if nan.any():
            missing = nan if missing is None else (missing | nan)
        return (values, missing) if wanted in ("number", "any") else (_as_text(values, missing), missing)
    if (pa.types.is_string(tp) or pa.types.is_large_string(tp)) and wanted != "number":
        # Few distinct values (labels, categories) convert once each.
        encoded = column.dictionary_encode()
        names = encoded.dictionary.to_numpy(zero_copy_only=False)
        codes = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False) if len(names) else None
        values = names[codes] if codes is not None else np.full(len(column), None, dtype=object)
        if missing is not None:
            values[missing] = None
        return values, missing
    values = column.to_numpy(zero_copy_only=False)
    if wanted == "text" or (wanted == "label" and not pa.types.is_integer(tp)):
        values = _as_text(values, missing)
    elif wanted == "number" and values.dtype.kind in "iub":
        values = values.astype(np.float64)
    return values, missing


def _as_text(values: Array, missing: Array | None) -> Array:
    # As pandas' astype(str) writes them: 1.0 stays "1.0", True is "True".
    text = pd.Series(values).astype(str).to_numpy(dtype=object)
    if missing is not None:
        text[missing] = None
    return np.asarray(text)


def _pandas_csv_blocks(
    path: str, columns: list[str], types: Mapping[str, ColumnType], block_rows: int | None, *, resume_at: int
) -> Iterator[RawBlock]:
    rows = block_rows or max(1, BLOCK_CELLS // max(1, len(columns)))
    pinned: dict[Hashable, Any] = {c: PANDAS_DTYPES["string"] for c in columns if types.get(c) in ("text", "label")}
    done = 0
    try:
        reader = pd.read_csv(
            path,
            chunksize=rows,
            usecols=columns,
            dtype=pinned or None,
            keep_default_na=False,
            na_values=MISSING_VARIANTS,
            encoding="utf-8-sig",
            encoding_errors="strict",
            # The default parser can be one ulp off; round_trip reads back
            # exactly what repr() wrote.
            float_precision="round_trip",
        )
        with reader:
            for chunk in reader:
                start, end = done, done + len(chunk)
                done = end
                if end <= resume_at:
                    continue
                if start < resume_at:
                    chunk = chunk.iloc[resume_at - start :]
                    start = resume_at
                yield _frame_block(chunk, columns, types, start)
    except UnicodeDecodeError as exc:
        raise InvalidDataset(utf8_error(path)) from exc
    except pd.errors.EmptyDataError as exc:
        raise InvalidDataset("the file is empty") from exc
    except (pd.errors.ParserError, ValueError) as exc:
        raise InvalidDataset(f"cannot read the CSV file: {first_line(exc)}") from exc


def _frame_block(frame: pd.DataFrame, columns: list[str], types: Mapping[str, ColumnType], offset: int) -> RawBlock:
    arrays: dict[str, Array] = {}
    missing: dict[str, Array | None] = {}
    for name in columns:
        series = frame[name]
        na = series.isna().to_numpy()
        values = series.to_numpy()
        if types.get(name) in ("text", "label") and values.dtype != object:
            values = _as_text(values, na if na.any() else None)
        elif types.get(name) == "number" and values.dtype.kind in "iub":
            values = values.astype(np.float64)
        if values.dtype.kind == "f":
            na = na | np.isnan(values)
        arrays[name], missing[name] = values, (na if na.any() else None)
    return RawBlock(offset=offset, rows=len(frame), columns=arrays, missing=missing)


# ------------------------------------------------------------ Parquet


def _parquet_blocks(
    path: str, columns: list[str], types: Mapping[str, ColumnType], block_rows: int | None, start: int
) -> Iterator[RawBlock]:
    pa = _pa()
    pf = open_parquet(path)
    unknown = [c for c in columns if c not in pf.schema_arrow.names]
    if unknown:
        raise InvalidDataset(f"columns not in the data set: {list_names(unknown)}")
    rows = block_rows or max(1, BLOCK_CELLS // max(1, len(columns)))
    # Row groups wholly before ``start`` are never read.
    groups: list[int] = []
    offset = 0
    for index in range(pf.metadata.num_row_groups):
        size = pf.metadata.row_group(index).num_rows
        if groups or offset + size > start:
            groups.append(index)
        else:
            offset += size
    done = offset
    try:
        for batch in pf.iter_batches(batch_size=rows, columns=columns, row_groups=groups):
            if batch.num_rows == 0:
                continue
            yield _arrow_block(batch, columns, types, done)
            done += batch.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise InvalidDataset(f"the Parquet file is corrupt: {first_line(exc)}") from exc


# -------------------------------------------------------- ImageFolder


def _image_name_blocks(ref: DatasetRef, columns: list[str], block_rows: int) -> Iterator[RawBlock]:
    from workers.engine.imagefolder import iter_image_names

    done = 0
    for frame in iter_image_names(ref, block_rows, columns):
        yield _frame_block(frame, columns, {}, done)
        done += len(frame)
