"""The section registry: what a builder is given and what it returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Table = dict[str, Any]  # {"title", "columns": [...], "rows": [[...], ...], "note"?}
#: Rows beyond this are left out of a generic table (with a note saying how many).
MAX_TABLE_ROWS = 60
#: Kinds whose report section lists every earlier run of the kind on the model version.
HISTORY_KINDS = frozenset({"drift"})


@dataclass
class JobContext:
    kind: str
    label: str
    params: dict[str, Any]
    result: dict[str, Any]
    dataset: str | None
    #: Earlier and later succeeded runs of the same kind on this model version (HISTORY_KINDS only).
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Section:
    method: str
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


_BUILDERS: dict[str, Callable[[JobContext], Section]] = {}


def section(kind: str) -> Callable[[Callable[[JobContext], Section]], Callable[[JobContext], Section]]:
    def register(fn: Callable[[JobContext], Section]) -> Callable[[JobContext], Section]:
        _BUILDERS[kind] = fn
        return fn

    return register
