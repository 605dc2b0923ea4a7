"""CSV inspection and batched reading.

The missing-value rule is shared by both: a field is missing when it is empty
or one of NA, NaN, null, None in any letter case. Nothing else is (pandas'
longer default list is switched off), so inspection counts exactly the values
pandas later reads as NaN.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pandas as pd

from workers.engine.csvchunks import CsvChunks
from workers.engine.errors import InvalidDataset
from workers.engine.tabular import PANDAS_DTYPES, check_column_names, first_line
from workers.engine.types import ColumnInfo, DatasetInfo

__all__ = ["MISSING_TOKENS", "MISSING_VARIANTS", "count_csv_rows", "inspect_csv", "iter_csv", "utf8_error"]

MISSING_TOKENS: tuple[str, ...] = ("", "NA", "NaN", "null", "None")


def _case_variants(word: str) -> set[str]:
    pools = [{ch.lower(), ch.upper()} for ch in word]
    return {"".join(p) for p in itertools.product(*pools)}


# Every letter-case spelling, because pandas' na_values match exactly.
_MISSING: frozenset[str] = frozenset().union(*(_case_variants(t) for t in MISSING_TOKENS))
#: The same spellings, sorted, for readers that take a list.
MISSING_VARIANTS: list[str] = sorted(_MISSING)
# ASCII only: Python's int() takes other scripts' digits, pandas does not.
_INT_RE = re.compile(r"\s*[+-]?\d+\s*", re.ASCII)
_FLOAT_RE = re.compile(r"\s*[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity)\s*", re.IGNORECASE | re.ASCII)
_LINE_END = re.compile(r"\r\n|\r|\n")
_BOOL = frozenset({"true", "false"})
_INT64_MAX = 2**63 - 1
# Values buffered per column when inspecting: bounds memory for wide files.
_CELLS_PER_CHUNK = 1_000_000


class _ColumnStats:
    """Type evidence for one CSV column, narrowed as values arrive."""

    __slots__ = ("can_bool", "can_float", "can_int", "missing", "seen")

    def __init__(self) -> None:
        self.can_int = self.can_float = self.can_bool = True
        self.missing = 0
        self.seen = False

    def add(self, values: tuple[str, ...]) -> None:
        distinct = set(values)
        missing = distinct & _MISSING
        if missing:
            self.missing += sum(values.count(m) for m in missing)
            distinct -= missing
        if not distinct:
            return
        self.seen = True
        # Checking distinct values only keeps low-cardinality columns cheap.
        for value in distinct:
            if not (self.can_int or self.can_float or self.can_bool):
                return
            if self.can_int and not (_INT_RE.fullmatch(value) and abs(int(value)) <= _INT64_MAX):
                self.can_int = False
            if self.can_float and not self.can_int and not _FLOAT_RE.fullmatch(value):
                self.can_float = False
            if self.can_bool and value.lower() not in _BOOL:
                self.can_bool = False

    @property
    def dtype(self) -> str:
        if not self.seen:
            return "float64"  # all missing: what pandas reads
        if self.can_int:
            return "int64"
        if self.can_float:
            return "float64"
        return "bool" if self.can_bool else "string"


def inspect_csv(path: str) -> DatasetInfo:
    """Describe a UTF-8 CSV file in one streamed pass (see ``datasets.inspect_dataset``).

    Arrow parses the file a piece at a time (:class:`CsvChunks`), types and
    missing values are tallied per piece, and only a file Arrow cannot read
    is read again by the row-by-row reader below, to say exactly where it is
    wrong.
    """
    info = _scan_csv(path)
    return info if info is not None else _inspect_csv_rows(path)


def _scan_csv(path: str) -> DatasetInfo | None:
    """The fast pass; ``None`` when the file needs the precise reader (an error to locate)."""
    import pyarrow as pa
    import pyarrow.csv

    convert = pa.csv.ConvertOptions(
        null_values=MISSING_VARIANTS,
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        true_values=sorted(_case_variants("true")),
        false_values=sorted(_case_variants("false")),
    )
    # Pieces of 8 MB, parsed side by side one per core (CsvChunks): about
    # 75 MB above idle for a 585 MB file, and no more for a larger one.
    chunks = CsvChunks(path, convert, block_bytes=8 << 20)
    stats: list[_ColumnStats] = []
    names: list[str] = []
    rows = 0
    try:
        for table in chunks:
            if not stats:
                names = list(table.column_names)
                check_column_names(names)
                _check_not_data(names)
                stats = [_ColumnStats() for _ in names]
            rows += table.num_rows
            for name, column in zip(names, stats, strict=True):
                # The column as Arrow parsed it, in its chunks: counts and types need no copy.
                if not _absorb_arrow(column, table.column(name)):
                    return None
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    if rows == 0 or chunks.quotes % 2:
        return None  # no rows, or the file ends inside a quoted field: the precise reader says which
    columns = tuple(ColumnInfo(name, s.dtype, s.missing) for name, s in zip(names, stats, strict=True))
    return DatasetInfo(format="csv", rows=rows, columns=columns)


def _absorb_arrow(stats: _ColumnStats, column: Any) -> bool:
    """Narrow a column's type by Arrow's reading of one piece; ``False`` for bytes that are not UTF-8."""
    import pyarrow as pa

    stats.missing += column.null_count
    tp = column.type
    if pa.types.is_null(tp) or column.null_count == len(column):
        return True
    stats.seen = True
    if pa.types.is_integer(tp):
        stats.can_bool = False
    elif pa.types.is_floating(tp):
        stats.can_int = stats.can_bool = False
    elif pa.types.is_boolean(tp):
        stats.can_int = stats.can_float = False
    elif pa.types.is_string(tp) or pa.types.is_large_string(tp):
        # Text by Arrow's rules may still be numbers by ours: decide on the distinct values.
        if stats.can_int or stats.can_float or stats.can_bool:
            distinct = column.drop_null().unique().to_pylist()
            stats.add(tuple(distinct))
            stats.seen = True
    elif pa.types.is_binary(tp) or pa.types.is_large_binary(tp):
        return False
    else:  # dates, times, timestamps: text to us
        stats.can_int = stats.can_float = stats.can_bool = False
    return True


def _inspect_csv_rows(path: str) -> DatasetInfo:
    reader: Any = None
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="strict") as fh:
            reader = csv.reader(fh)
            header = next((row for row in reader if row), None)
            if header is None:
                raise InvalidDataset("no header: the file has only blank lines")
            check_column_names(header)
            _check_not_data(header)
            width = len(header)
            stats = [_ColumnStats() for _ in header]
            chunk_rows = max(1, _CELLS_PER_CHUNK // width)
            header_end = reader.line_num
            rows = 0
            chunk: list[list[str]] = []
            line_before = line_before_last = reader.line_num
            for row in reader:
                if len(row) != width and row:
                    raise InvalidDataset(_ragged(len(row), width, line_before + 1, reader.line_num))
                line_before_last, line_before = line_before, reader.line_num
                if row:  # blank lines are skipped, as pandas does
                    chunk.append(row)
                if len(chunk) >= chunk_rows:
                    rows += _absorb(stats, chunk)
                    chunk = []
            rows += _absorb(stats, chunk)
            last_record = (line_before_last + 1, reader.line_num)
    except UnicodeDecodeError as exc:
        raise InvalidDataset(utf8_error(path)) from exc
    except csv.Error as exc:
        line = reader.line_num if reader is not None else 1
        raise InvalidDataset(f"line {line}: {exc} (an unbalanced quote?)") from exc
    if rows and _ends_in_open_quote(path, *last_record):
        raise InvalidDataset(
            f"the file ends inside a quoted field of the record starting on line {last_record[0]}: "
            "is a quote left open?"
        )
    if rows == 0:
        hint = " (the header runs over several lines: is a quote left open?)" if header_end > 1 else ""
        raise InvalidDataset(f"no data rows: the file has a header but no rows below it{hint}")
    columns = tuple(ColumnInfo(name, s.dtype, s.missing) for name, s in zip(header, stats, strict=True))
    return DatasetInfo(format="csv", rows=rows, columns=columns)


def _ragged(fields: int, width: int, start: int, end: int) -> str:
    if end > start:
        return (
            f"the record on lines {start}-{end} has {fields} fields but the header has {width} "
            "(a quoted field spans those lines: is a quote left open?)"
        )
    return f"line {end} has {fields} fields but the header has {width}"


def _ends_in_open_quote(path: str, start: int, end: int) -> bool:
    """Re-parse the file's last record strictly: the lenient reader accepts EOF inside quotes."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        # The field size limit bounds a runaway quoted field, so the tail
        # holds the whole record unless it is made of many short fields.
        fh.seek(max(0, size - 4 * csv.field_size_limit()))
        tail = fh.read().decode("utf-8", errors="replace")
    lines = _LINE_END.split(tail)
    wanted = end - start + 1
    # split() leaves the text after the final line ending as the last item.
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) < wanted:
        return False
    record = "\n".join(lines[-wanted:])
    try:
        list(csv.reader(io.StringIO(record, newline=""), strict=True))
    except csv.Error as exc:
        # Strict mode also objects to text after a closing quote ("a"b),
        # which the lenient reader and pandas accept; only EOF counts here.
        return "unexpected end of data" in str(exc)
    return False


def _absorb(stats: list[_ColumnStats], chunk: list[list[str]]) -> int:
    if chunk:
        for column, values in zip(stats, zip(*chunk, strict=True), strict=True):
            column.add(values)
    return len(chunk)


def _check_not_data(names: Sequence[str]) -> None:
    # Integer names (0, 1, 2 from a default pandas frame) are plausible
    # headers; a row of numbers with a decimal point is data.
    if all(_FLOAT_RE.fullmatch(n) for n in names) and not all(_INT_RE.fullmatch(n) for n in names):
        preview = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise InvalidDataset(f"no header: the first line ({preview}) looks like data; it must name the columns")


def utf8_error(path: str) -> str:
    """Find the first byte that is not UTF-8 and say where it is."""
    offset = 0
    newlines = 0
    carry = b""
    with open(path, "rb") as fh:
        while True:
            block = fh.read(1 << 20)
            data = carry + block
            try:
                data.decode("utf-8")
                carry = b""
            except UnicodeDecodeError as exc:
                # A character split across blocks is not an error yet.
                if block and exc.end == len(data) and len(data) - exc.start < 4:
                    carry = data[exc.start :]
                    newlines += data.count(b"\n", 0, exc.start)
                    offset += exc.start
                    continue
                bad = offset + exc.start
                line = newlines + data.count(b"\n", 0, exc.start) + 1
                return (
                    f"not valid UTF-8 near byte offset {bad} (line {line}): byte 0x{data[exc.start]:02x}; "
                    "save the file as UTF-8"
                )
            if not block:
                break
            newlines += data.count(b"\n")
            offset += len(data)
    return "not valid UTF-8; save the file as UTF-8"


def count_csv_rows(path: str) -> int:
    """Count data rows (records after the header, blank lines skipped) without inferring types."""
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="strict") as fh:
            records = sum(1 for row in csv.reader(fh) if row)
    except UnicodeDecodeError as exc:
        raise InvalidDataset(utf8_error(path)) from exc
    except csv.Error as exc:
        raise InvalidDataset(f"cannot read the CSV file: {exc}") from exc
    return max(records - 1, 0)


def iter_csv(
    path: str, batch_size: int, columns: list[str] | None, dtypes: Mapping[str, str]
) -> Iterator[pd.DataFrame]:
    """Yield ``path``'s rows as DataFrames of at most ``batch_size`` rows (see ``datasets.iter_batches``)."""
    try:
        reader = pd.read_csv(
            path,
            chunksize=batch_size,
            usecols=columns,
            dtype={c: PANDAS_DTYPES[t] for c, t in dtypes.items()} or None,
            keep_default_na=False,
            na_values=sorted(_MISSING),
            encoding="utf-8-sig",
            encoding_errors="strict",
            # The default parser can be one ulp off; round_trip reads back
            # exactly what repr() wrote.
            float_precision="round_trip",
        )
        with reader:
            for chunk in reader:
                # usecols keeps file order; reorder only when asked for another.
                yield chunk[columns] if columns is not None and list(chunk.columns) != columns else chunk
    except UnicodeDecodeError as exc:
        raise InvalidDataset(utf8_error(path)) from exc
    except pd.errors.EmptyDataError as exc:
        raise InvalidDataset("the file is empty") from exc
    except (pd.errors.ParserError, ValueError) as exc:
        raise InvalidDataset(f"cannot read the CSV file: {first_line(exc)}") from exc
