"""The README's API examples refer to files that exist and to label columns those files have."""

from __future__ import annotations

import re

import pandas as pd

from tests.conftest import ROOT


def _using_it() -> str:
    text = (ROOT / "README.md").read_text()
    return text[text.index("## Using it") : text.index("### Evaluation parameters")]


def test_curl_uploads_name_files_in_the_repository_and_their_label_columns():
    section = _using_it()
    uploads = re.findall(r"^curl .*$", section, flags=re.MULTILINE)
    files = [m for line in uploads for m in re.findall(r"=@(\S+)", line)]
    assert files, "the README shows uploads"
    for name in files:
        assert (ROOT / name).is_file(), name
    for line in uploads:
        label = re.search(r"label_column=(\S+)", line)
        data = re.search(r"file=@(\S+\.csv)", line)
        if label and data:
            assert label.group(1) in pd.read_csv(ROOT / data.group(1), nrows=1).columns, line
