"""A job's report section: its method, results tables and notes, one builder per kind.

Builders read the run's stored result and parameters; they never recompute a
metric. A kind without a builder gets the generic one, which lays out every
scalar result and every table-shaped part of the result, so a new job kind
appears in reports before anyone writes its section. Figures come from
``evalsvc.dashboards.figures`` (the dashboard's own), drawn by the document
builder.
"""

from __future__ import annotations

from typing import Any

from . import evaluate, parity, profile  # noqa: F401  (each registers its builder)
from ._registry import _BUILDERS, HISTORY_KINDS, MAX_TABLE_ROWS, JobContext, Section, Table, section
from .generic import generic_section, history_table

__all__ = [
    "HISTORY_KINDS",
    "MAX_TABLE_ROWS",
    "JobContext",
    "Section",
    "Table",
    "build_section",
    "generic_section",
    "history_table",
    "numeric_results",
    "section",
]


def build_section(ctx: JobContext) -> Section:
    built = _BUILDERS.get(ctx.kind, generic_section)(ctx)
    if ctx.kind in HISTORY_KINDS and ctx.history:
        built.tables.append(history_table(ctx))
    errors = ctx.result.get("errors")
    if isinstance(errors, dict):
        built.notes += [f"{part} could not be computed: {message}" for part, message in errors.items()]
    elif isinstance(errors, list):
        built.notes += [str(e) for e in errors]
    return built


def numeric_results(result: dict[str, Any]) -> dict[str, float]:
    """The numbers a threshold can apply to: ``result["metrics"]`` and top-level scalars."""
    found: dict[str, float] = {}
    for source in (result, result.get("metrics") if isinstance(result.get("metrics"), dict) else {}):
        for key, value in source.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                found[key] = value
    return found
