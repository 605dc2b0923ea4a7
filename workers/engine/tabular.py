"""Helpers shared by the CSV and Parquet readers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from workers.engine.errors import InvalidDataset

__all__ = ["PANDAS_DTYPES", "check_column_names", "first_line", "list_names"]

_MAX_LISTED_COLUMNS = 20

#: The engine's four column types as pandas dtypes; nullable where pandas
#: needs it to hold missing values.
PANDAS_DTYPES: dict[str, Any] = {"string": str, "float64": "float64", "int64": "Int64", "bool": "boolean"}


def check_column_names(names: Sequence[str]) -> None:
    """Raise :class:`InvalidDataset` for an empty or repeated column name."""
    first_seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if not name.strip():
            raise InvalidDataset(f"column {position} of the header has an empty name")
        if name in first_seen:
            raise InvalidDataset(f"duplicate column name {name!r} (columns {first_seen[name]} and {position})")
        first_seen[name] = position


def list_names(names: Sequence[str]) -> str:
    """Join names for a message, cutting long lists short."""
    shown = ", ".join(names[:_MAX_LISTED_COLUMNS])
    if len(names) > _MAX_LISTED_COLUMNS:
        shown += f", ... ({len(names) - _MAX_LISTED_COLUMNS} more)"
    return shown


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text, or its type name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
