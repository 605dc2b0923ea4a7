"""inspect_dataset, iter_batches and validate_label_column on good and bad files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes

from workers.engine.datasets import inspect_dataset, iter_batches, validate_label_column
from workers.engine.errors import EngineError, InvalidDataset
from workers.engine.types import ColumnInfo, DatasetInfo, DatasetRef

WriteCsv = Callable[[Path, "str | bytes"], Path]

CRAFTED = (
    "id,score,flag,name,empty,mixed\n"
    "1,0.5,true,ann,,1\n"
    "2,NA,FALSE,bob,NaN,x\n"
    "3,1e3,True,,null,2\n"
    "4,-2,false,NULL,None,\n"
    "5,7,tRuE,nOnE,na,3.5\n"
)


def _dtypes(info: DatasetInfo) -> dict[str, str]:
    return {c.name: c.dtype for c in info.columns}


def _missing(info: DatasetInfo) -> dict[str, int]:
    return {c.name: c.missing for c in info.columns}


# ------------------------------------------------------------------------ CSV


def test_crafted_csv_types_and_missing(tmp_path: Path, write_csv: WriteCsv) -> None:
    info = inspect_dataset(str(write_csv(tmp_path / "d.csv", CRAFTED)), "csv")
    assert info.format == "csv"
    assert info.rows == 5
    assert _dtypes(info) == {
        "id": "int64",
        "score": "float64",
        "flag": "bool",
        "name": "string",
        "empty": "float64",  # all missing reads as float NaN, as in pandas
        "mixed": "string",
    }
    assert _missing(info) == {"id": 0, "score": 1, "flag": 0, "name": 3, "empty": 5, "mixed": 1}


def test_bom_blank_lines_and_quoted_newlines(tmp_path: Path, write_csv: WriteCsv) -> None:
    text = '\ufeffa,b\r\n1,"two\r\nlines"\r\n\r\n3,"x, y"\r\n'
    info = inspect_dataset(str(write_csv(tmp_path / "b.csv", text)), "csv")
    assert [c.name for c in info.columns] == ["a", "b"]
    assert info.rows == 2
    ref = DatasetRef(str(tmp_path / "b.csv"), "csv", "", ("a", "b"))
    frame = pd.concat(iter_batches(ref, 10))
    assert frame["b"].tolist() == ["two\r\nlines", "x, y"]


def test_breast_cancer_fixture(fixtures_dir: Path) -> None:
    info = inspect_dataset(str(fixtures_dir / "breast_cancer.csv"), "csv")
    assert info.rows == 569
    assert len(info.columns) == 31
    assert info.columns[0] == ColumnInfo("mean_radius", "float64", 0)
    assert info.columns[-1] == ColumnInfo("diagnosis", "int64", 0)


def test_ragged_row_line_number(tmp_path: Path, write_csv: WriteCsv) -> None:
    lines = ["a,b,c,d,e,f"] + [",".join(str(i) for i in range(6))] * 15 + ["1,2,3,4,5"]
    path = write_csv(tmp_path / "r.csv", "\n".join(lines) + "\n")
    with pytest.raises(InvalidDataset, match="^line 17 has 5 fields but the header has 6$"):
        inspect_dataset(str(path), "csv")


def test_ragged_multiline_record(tmp_path: Path, write_csv: WriteCsv) -> None:
    path = write_csv(tmp_path / "r.csv", 'a,b\n1,2\n3,"x\ny",9\n')
    with pytest.raises(InvalidDataset, match="record on lines 3-4 has 3 fields"):
        inspect_dataset(str(path), "csv")


def test_latin1_is_rejected_with_location(tmp_path: Path, write_csv: WriteCsv) -> None:
    data = "name,city\nann,Paris\nbob,Orl\u00e9ans\n".encode("latin-1")
    assert data.index(b"\xe9") == 27
    with pytest.raises(InvalidDataset, match=r"^not valid UTF-8 near byte offset 27 \(line 3\): byte 0xe9"):
        inspect_dataset(str(write_csv(tmp_path / "l.csv", data)), "csv")


def test_utf8_error_offset_past_the_first_megabyte(tmp_path: Path, write_csv: WriteCsv) -> None:
    # Multi-byte characters straddle the scanner's 1 MiB blocks; only the
    # real bad byte may be reported, at its exact offset.
    row = "x,\u00e9\u00e9\u00e9\n".encode()  # 9 bytes, 2-byte characters at odd offsets
    body = b"a,b\n" + row * 120_000
    bad_at = len(body) + 2
    data = body + b"y,\xff\n"
    with pytest.raises(InvalidDataset, match=rf"near byte offset {bad_at} \(line {120_002}\)"):
        inspect_dataset(str(write_csv(tmp_path / "big.csv", data)), "csv")


def test_valid_utf8_multibyte_everywhere(tmp_path: Path, write_csv: WriteCsv) -> None:
    text = "city,n\n" + "".join(f"S\u00e3o Paulo \u2603 \U0001f600,{i}\n" for i in range(60_000))
    info = inspect_dataset(str(write_csv(tmp_path / "u.csv", text)), "csv")
    assert info.rows == 60_000
    assert _dtypes(info) == {"city": "string", "n": "int64"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "^the file is empty$"),
        (b"\n\n\n", "^no header"),
        (b"a,b,c\n", "^no data rows"),
        (b"a,b,c\n\n\n", "^no data rows"),
        (b"a,b,a\n1,2,3\n", r"^duplicate column name 'a' \(columns 1 and 3\)$"),
        (b"a,,c\n1,2,3\n", "^column 2 of the header has an empty name$"),
        (b"a, ,c\n1,2,3\n", "^column 2 of the header has an empty name$"),
        (b"5.1,3.5,1.4\n4.9,3.0,1.4\n", "^no header: the first line"),
        (b'a,b\n1,"2\n3,4\n', "ends inside a quoted field of the record starting on line 2"),
        (b'a,"b\n1,2\n', "is a quote left open"),
    ],
    ids=[
        "empty",
        "blank",
        "header-only",
        "header-blank",
        "duplicate",
        "empty-name",
        "blank-name",
        "numeric-header",
        "open-quote",
        "open-quote-header",
    ],
)
def test_bad_csv(tmp_path: Path, write_csv: WriteCsv, content: bytes, message: str) -> None:
    with pytest.raises(InvalidDataset, match=message) as err:
        inspect_dataset(str(write_csv(tmp_path / "bad.csv", content)), "csv")
    assert err.value.permanent


def test_text_after_closing_quote_is_accepted(tmp_path: Path, write_csv: WriteCsv) -> None:
    # Sloppy but readable (pandas reads it too); not an open quote.
    info = inspect_dataset(str(write_csv(tmp_path / "q.csv", 'a,b\n1,"x"y\n"2" ,z\n')), "csv")
    assert info.rows == 2


def test_integer_header_is_a_header(tmp_path: Path, write_csv: WriteCsv) -> None:
    info = inspect_dataset(str(write_csv(tmp_path / "i.csv", "0,1,2\n5,6,7\n")), "csv")
    assert [c.name for c in info.columns] == ["0", "1", "2"]


def test_unknown_format(tmp_path: Path, write_csv: WriteCsv) -> None:
    with pytest.raises(InvalidDataset, match="unsupported data set format 'xlsx'"):
        inspect_dataset(str(write_csv(tmp_path / "a.xlsx", "a\n1\n")), "xlsx")


# -------------------------------------------------------------------- Parquet


def test_parquet_types_and_missing(tmp_path: Path, pyarrow_parquet: ModuleType) -> None:
    import pyarrow as pa

    table = pa.table(
        {
            "i": pa.array([1, None, 3], pa.int32()),
            "u": pa.array([1, 2, 3], pa.uint8()),
            "f": pa.array([1.5, float("nan"), None], pa.float32()),
            "b": pa.array([True, None, False]),
            "s": pa.array(["x", None, "z"]),
            "d": pa.array(["p", "q", None]).dictionary_encode(),
            "t": pa.array([0, 1, 2], pa.timestamp("s")),
        }
    )
    path = tmp_path / "t.parquet"
    pyarrow_parquet.write_table(table, path, row_group_size=2)
    info = inspect_dataset(str(path), "parquet")
    assert info.format == "parquet"
    assert info.rows == 3
    assert _dtypes(info) == {
        "i": "int64",
        "u": "int64",
        "f": "float64",
        "b": "bool",
        "s": "string",
        "d": "string",
        "t": "string",
    }
    assert _missing(info) == {"i": 1, "u": 0, "f": 2, "b": 1, "s": 1, "d": 1, "t": 0}


def test_parquet_fixture(fixtures_dir: Path, pyarrow_parquet: ModuleType) -> None:
    info = inspect_dataset(str(fixtures_dir / "diabetes.parquet"), "parquet")
    assert info.rows == 442
    assert [c.name for c in info.columns] == ["age", "sex", "bmi", "bp"] + [f"s{i}" for i in range(1, 7)] + [
        "progression"
    ]
    assert {c.dtype for c in info.columns} == {"float64"}
    assert sum(c.missing for c in info.columns) == 0


@pytest.mark.parametrize(
    "content", [b"a,b\n1,2\n", b"PAR1" + b"\x00" * 64, b"\x89PNG\r\n\x1a\n"], ids=["csv", "magic-only", "png"]
)
def test_not_parquet(tmp_path: Path, write_csv: WriteCsv, pyarrow_parquet: ModuleType, content: bytes) -> None:
    with pytest.raises(InvalidDataset, match="^not a Parquet file: "):
        inspect_dataset(str(write_csv(tmp_path / "x.parquet", content)), "parquet")


def test_truncated_parquet(
    tmp_path: Path, fixtures_dir: Path, write_csv: WriteCsv, pyarrow_parquet: ModuleType
) -> None:
    data = (fixtures_dir / "diabetes.parquet").read_bytes()
    with pytest.raises(InvalidDataset, match="^not a Parquet file: "):
        inspect_dataset(str(write_csv(tmp_path / "t.parquet", data[: len(data) // 2])), "parquet")


def test_parquet_without_rows(tmp_path: Path, pyarrow_parquet: ModuleType) -> None:
    import pyarrow as pa

    path = tmp_path / "e.parquet"
    pyarrow_parquet.write_table(pa.table({"a": pa.array([], pa.int64())}), path)
    with pytest.raises(InvalidDataset, match="^no data rows"):
        inspect_dataset(str(path), "parquet")


def test_parquet_empty_file(tmp_path: Path, write_csv: WriteCsv) -> None:
    with pytest.raises(InvalidDataset, match="^the file is empty$"):
        inspect_dataset(str(write_csv(tmp_path / "e.parquet", b"")), "parquet")


# --------------------------------------------------------------- iter_batches


def test_csv_batches_cover_every_row_exactly(fixtures_dir: Path, make_ref) -> None:
    ref = make_ref(fixtures_dir / "breast_cancer.csv", "csv", "diagnosis")
    batches = list(iter_batches(ref, 100))
    assert [len(b) for b in batches] == [100] * 5 + [69]
    frame = pd.concat(batches, ignore_index=True)
    data = load_breast_cancer()
    # Floats written with repr() must read back bit for bit.
    np.testing.assert_array_equal(frame.iloc[:, :30].to_numpy(), data.data)
    np.testing.assert_array_equal(frame["diagnosis"].to_numpy(), data.target)


def test_csv_column_selection_keeps_requested_order(fixtures_dir: Path, make_ref) -> None:
    ref = make_ref(fixtures_dir / "breast_cancer_test.csv", "csv", "diagnosis")
    first = next(iter_batches(ref, 7, ["diagnosis", "mean_area"]))
    assert list(first.columns) == ["diagnosis", "mean_area"]
    assert len(first) == 7


def test_csv_missing_rule_matches_inspection(tmp_path: Path, write_csv: WriteCsv) -> None:
    path = write_csv(tmp_path / "d.csv", CRAFTED)
    info = inspect_dataset(str(path), "csv")
    ref = DatasetRef(str(path), "csv", "", tuple(c.name for c in info.columns))
    frame = pd.concat(iter_batches(ref, 2))
    assert frame.isna().sum().to_dict() == _missing(info)


def test_csv_pinned_dtypes(tmp_path: Path, write_csv: WriteCsv) -> None:
    # Without pinning, pandas guesses per batch: "7" would be int in one
    # batch and text in another.
    path = write_csv(tmp_path / "p.csv", "k,v\n7,1\n8,2\nx,3\nNA,4\n")
    ref = DatasetRef(str(path), "csv", "", ("k", "v"))
    frame = pd.concat(iter_batches(ref, 2, dtypes={"k": "string"}))
    assert frame["k"].tolist()[:3] == ["7", "8", "x"]
    assert pd.isna(frame["k"].iloc[3])


def test_unknown_columns(fixtures_dir: Path, make_ref) -> None:
    ref = make_ref(fixtures_dir / "breast_cancer_test.csv", "csv", "diagnosis")
    with pytest.raises(InvalidDataset, match="columns not in the data set: nope"):
        next(iter_batches(ref, 10, ["mean_area", "nope"]))


def test_parquet_pinned_string_keeps_missing(tmp_path: Path, pyarrow_parquet: ModuleType) -> None:
    import pyarrow as pa

    path = tmp_path / "s.parquet"
    pyarrow_parquet.write_table(pa.table({"k": pa.array([1.0, None, 3.0])}), path)
    ref = DatasetRef(str(path), "parquet", "", ("k",))
    frame = next(iter_batches(ref, 10, dtypes={"k": "string"}))
    assert frame["k"].tolist()[0::2] == ["1.0", "3.0"]
    assert pd.isna(frame["k"].iloc[1])


def test_parquet_batches(fixtures_dir: Path, diabetes_ref: DatasetRef) -> None:
    batches = list(iter_batches(diabetes_ref, 100, ["progression", "age"]))
    assert [len(b) for b in batches] == [100, 100, 100, 100, 42]
    frame = pd.concat(batches, ignore_index=True)
    assert list(frame.columns) == ["progression", "age"]
    data = load_diabetes()
    np.testing.assert_array_equal(frame["progression"].to_numpy(), data.target)
    np.testing.assert_array_equal(frame["age"].to_numpy(), data.data[:, 0])


# ------------------------------------------------------- validate_label_column


def test_validate_label_column() -> None:
    info = DatasetInfo("csv", 1, tuple(ColumnInfo(n, "int64", 0) for n in ("a", "b", "c")))
    validate_label_column(info, "b")
    with pytest.raises(InvalidDataset, match="^label column 'x' is not in the data set; columns are: a, b, c$"):
        validate_label_column(info, "x")


def test_validate_label_column_long_list() -> None:
    info = DatasetInfo("csv", 1, tuple(ColumnInfo(f"c{i}", "int64", 0) for i in range(50)))
    with pytest.raises(InvalidDataset, match=r"columns are: c0, c1, .*, c19, \.\.\. \(30 more\)$"):
        validate_label_column(info, "x")


def test_parquet_without_pyarrow_is_a_worker_problem(
    tmp_path: Path, write_csv: WriteCsv, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    # None in sys.modules makes `import pyarrow` raise ImportError.
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(EngineError, match="Parquet support is unavailable on this worker") as err:
        inspect_dataset(str(write_csv(tmp_path / "x.parquet", b"PAR1")), "parquet")
    assert not err.value.permanent
