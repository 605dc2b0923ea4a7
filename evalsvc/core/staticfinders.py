"""Serve plotly.js from the installed plotly package as a static file.

Users run evalsvc air-gapped: the dashboards never load scripts from a CDN,
and the bundled file always matches the plotly version that drew the figure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, overload

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PLOTLY_JS = "vendor/plotly.min.js"
_SOURCE_DIR = Path(plotly.__file__).parent / "package_data"


class PlotlyFinder(BaseFinder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.storage = FileSystemStorage(location=str(_SOURCE_DIR))
        self.storage.prefix = "vendor"  # type: ignore[attr-defined]

    def check(self, **kwargs: Any) -> list[Any]:
        return []

    @overload
    def find(self, path: str, find_all: Literal[False] = False, **kwargs: Any) -> str | None: ...
    @overload
    def find(self, path: str, find_all: Literal[True], **kwargs: Any) -> list[str]: ...
    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> str | list[str] | None:
        found = str(_SOURCE_DIR / "plotly.min.js") if path == PLOTLY_JS else None
        if find_all or kwargs.get("all"):  # ``all``: the keyword's name before Django 5.2
            return [found] if found else []
        return found

    def list(self, ignore_patterns: Any) -> Any:
        yield "plotly.min.js", self.storage
