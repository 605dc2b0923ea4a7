"""Registration's CSV inspection: the Arrow pass agrees with the row-by-row reader and leaves errors to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.engine.csvfile import _inspect_csv_rows, _scan_csv, inspect_csv
from workers.engine.errors import InvalidDataset

AGREE = {
    "numbers": "i,f,b,s\n1,1.5,true,x\n-2,2,FALSE,y\n3,1e5,tRuE,1\n",
    "missing": "a,b,c\n,NA,x\n2,nan,\nnull,1.5,None\n",
    "all missing": "a,b\n,1\nNA,2\n",
    "spaces and infinities": "a,b\n 1 ,inf\n2,-Infinity\n",
    "big integers": "a,b\n9223372036854775807,99999999999999999999\n1,2\n",
    "dates are text": "d,t\n2020-01-01,2020-01-01 10:00:00\n2020-01-02,10:00\n",
    "quoted": 'a,b\n"1","x, y"\n"2","line\nbreak"\n',
    "bom, crlf, blank lines": "\ufeffa,b\r\n1,2\r\n\r\n3,4\r\n",
    "int then float in a later piece": "a\n" + "1\n" * 50_000 + "2.5\n",
    "int then text in a later piece": "a\n" + "1\n" * 50_000 + "x\n",
    "no final newline": "a,b\n1,2\n3,4",
}


@pytest.mark.parametrize("text", AGREE.values(), ids=AGREE.keys())
def test_arrow_pass_agrees_with_the_row_reader(tmp_path: Path, text: str) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(text.encode())
    fast = _scan_csv(str(path))
    assert fast is not None  # read at Arrow's speed, not by the fallback
    assert fast == _inspect_csv_rows(str(path))


ERRORS = {
    "ragged": ("a,b\n1,2\n3,4,5\n", "line 3 has 3 fields but the header has 2"),
    "header only": ("a,b\n", "no data rows: the file has a header but no rows below it"),
    "open quote": ('a,b\n1,"2\n3,4\n', "ends inside a quoted field of the record starting on line 2"),
    "not utf-8": (b"a,b\n1,\xff\n", "not valid UTF-8 near byte offset 6 \\(line 2\\)"),
}


@pytest.mark.parametrize(("content", "message"), ERRORS.values(), ids=ERRORS.keys())
def test_errors_are_located_by_the_row_reader(tmp_path: Path, content: str | bytes, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    assert _scan_csv(str(path)) is None
    with pytest.raises(InvalidDataset, match=message):
        inspect_csv(str(path))
