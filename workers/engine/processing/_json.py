"""Strict readers for JSON values that name the JSON path of whatever is wrong.

Every reader takes the value and its path (``"input.mean[1]"``) and returns
the value converted, or raises :class:`InvalidSpec` whose message starts
with that path, so a user can find the mistake in the spec they wrote.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from typing import Any

from workers.engine.errors import EngineError

__all__ = [
    "InvalidSpec",
    "child",
    "describe",
    "fail",
    "read_bool",
    "read_choice",
    "read_int",
    "read_list",
    "read_number",
    "read_object",
    "read_str",
    "unique",
]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class InvalidSpec(EngineError):
    """A processing spec that does not validate; the message starts with the JSON path at fault."""


def child(path: str, key: str | int) -> str:
    """The path of ``key`` under ``path``: ``a.b``, ``a[2]`` or ``a["odd key"]``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENTIFIER.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f'{path}["{key}"]'


def fail(path: str, message: str) -> InvalidSpec:
    """An :class:`InvalidSpec` for ``path``; raise what it returns."""
    return InvalidSpec(f"{path or 'processing spec'}: {message}")


def describe(value: Any) -> str:
    """A short JSON-ish description of a wrong value, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and not -(10**40) < value < 10**40:
        return "an integer too large to show"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:37] + "...")
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)}"
    return type(value).__name__


def read_object(
    value: Any, path: str, allowed: Collection[str] | None, required: Collection[str] = ()
) -> dict[str, Any]:
    """A JSON object with string keys, none outside ``allowed`` (``None``: any) and all of ``required``."""
    if not isinstance(value, Mapping):
        raise fail(path, f"expected an object, got {describe(value)}")
    for key in value:
        if not isinstance(key, str):
            raise fail(path, f"keys must be strings, got {describe(key)}")
        if allowed is not None and key not in allowed:
            raise fail(child(path, key), f"unknown key (allowed here: {', '.join(allowed)})")
    for key in required:
        if key not in value:
            raise fail(child(path, key), "is required")
    return dict(value)


def read_str(value: Any, path: str, *, allow_empty: bool = False) -> str:
    """A JSON string; empty only when ``allow_empty``."""
    if not isinstance(value, str):
        raise fail(path, f"expected a string, got {describe(value)}")
    if not allow_empty and not value.strip():
        raise fail(path, "must not be empty")
    return value


def read_bool(value: Any, path: str) -> bool:
    """A JSON ``true`` or ``false`` (not 0/1)."""
    if not isinstance(value, bool):
        raise fail(path, f"expected true or false, got {describe(value)}")
    return value


def read_int(value: Any, path: str, low: int | None = None, high: int | None = None) -> int:
    """A JSON integer in ``[low, high]``; ``2.0`` counts, ``true`` does not."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(path, f"expected an integer, got {describe(value)}")
    if low is not None and value < low:
        raise fail(path, f"must be at least {low}, got {describe(value)}")
    if high is not None and value > high:
        raise fail(path, f"must be at most {high}, got {describe(value)}")
    return value


def read_number(
    value: Any,
    path: str,
    *,
    low: float | None = None,
    high: float | None = None,
    positive: bool = False,
) -> float:
    """A finite JSON number in ``[low, high]`` (strictly above zero when ``positive``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(path, f"expected a number, got {describe(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer past the largest float: JSON has no limit on digits
        number = math.inf
    if not math.isfinite(number):
        raise fail(path, f"must be a finite number, got {describe(value)}")
    if positive and number <= 0:
        raise fail(path, f"must be greater than 0, got {describe(value)}")
    if low is not None and number < low:
        raise fail(path, f"must be at least {low:g}, got {describe(value)}")
    if high is not None and number > high:
        raise fail(path, f"must be at most {high:g}, got {describe(value)}")
    return number


def read_choice(value: Any, path: str, choices: Collection[str]) -> str:
    """One of ``choices`` (a JSON string)."""
    if not isinstance(value, str) or value not in choices:
        raise fail(path, f"expected one of {', '.join(repr(c) for c in choices)}, got {describe(value)}")
    return value


def read_list(value: Any, path: str, *, min_items: int = 0) -> list[Any]:
    """A JSON array with at least ``min_items`` items."""
    if not isinstance(value, (list, tuple)):
        raise fail(path, f"expected a list, got {describe(value)}")
    if len(value) < min_items:
        raise fail(path, f"expected at least {min_items} item{'s' if min_items != 1 else ''}, got {len(value)}")
    return list(value)


def unique(items: list[str], path: str, what: str) -> tuple[str, ...]:
    """``items`` as a tuple, or an error naming the first repeated one."""
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item in seen:
            raise fail(child(path, i), f"{what} {item!r} is listed twice")
        seen.add(item)
    return tuple(items)
