"""CSV pieces for Arrow: cut at line ends, quotes sent to the quote-aware reader, equal to one read_csv."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from workers.engine import csvchunks
from workers.engine.csvchunks import _TAIL, CsvChunks, _after_last_line_end


def _read(path: Path, block_bytes: int) -> pa.Table:
    convert = pacsv.ConvertOptions(column_types={"a": pa.int64(), "s": pa.string()})
    chunks = CsvChunks(str(path), convert, block_bytes=block_bytes)
    # Tables from the pieces read whole, record batches from the quote-aware stream.
    return pa.concat_tables([t if isinstance(t, pa.Table) else pa.Table.from_batches([t]) for t in chunks])


@pytest.mark.parametrize("memchr", [True, False], ids=["memchr", "numpy"])
@pytest.mark.parametrize("quoted", [False, True], ids=["plain", "quoted"])
def test_pieces_equal_one_read_of_the_whole_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memchr: bool, quoted: bool
) -> None:
    if not memchr:
        monkeypatch.setattr(csvchunks, "_MEMCHR", None)
    long = "y" * (_TAIL + 30_000)  # a line longer than the tail searched for the last line end
    rows = [f"{i},x{i}" for i in range(3000)] + [f"3000,{long}"] + [f"{i},z" for i in range(3001, 6000)]
    if quoted:
        rows[4000] = '4000,"with, comma"'
    path = tmp_path / "d.csv"
    path.write_text("a,s\n" + "\n".join(rows) + "\n")
    whole = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types={"a": pa.int64()}))
    for block_bytes in (50_000, 150_000, 1 << 20):
        got = _read(path, block_bytes)
        assert got.column("a").to_pylist() == list(range(6000))
        assert got.column("s").to_pylist() == whole.column("s").to_pylist()


def test_last_line_end_inside_and_before_the_tail() -> None:
    text = np.full(3 * _TAIL, ord("x"), dtype=np.uint8)
    assert _after_last_line_end(text) == 0
    text[10] = 10
    assert _after_last_line_end(text) == 11  # found only by the full search
    text[-5] = 10
    assert _after_last_line_end(text) == len(text) - 4
    small = np.frombuffer(b"ab\ncd\nef", dtype=np.uint8)
    assert _after_last_line_end(small) == 6
