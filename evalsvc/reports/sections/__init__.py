"""A job's report section: its method, results tables and notes, built by the job's kind.

Each kind's ``section`` reads the run's stored result and parameters; it
never recomputes a metric. A kind registered with ``generic_section``, or a
run of a kind no longer registered, gets the generic one, which lays out
every scalar result and every table-shaped part of the result. Figures are
the kind's own (the run page's), drawn by the document builder.
"""

from __future__ import annotations

from typing import Any

from evalsvc.core.exceptions import ApplicationError
from evalsvc.evaluations.kinds import get_kind
from evalsvc.evaluations.kinds.base import MAX_TABLE_ROWS, JobContext, Section, Table
from evalsvc.evaluations.kinds.generic import generic_section, history_table

__all__ = [
    "MAX_TABLE_ROWS",
    "JobContext",
    "Section",
    "Table",
    "build_section",
    "generic_section",
    "history_table",
    "numeric_results",
]


def build_section(ctx: JobContext) -> Section:
    try:
        builder = get_kind(ctx.kind).section
    except ApplicationError:  # a kind since removed from this deployment still has a stored result
        builder = generic_section
    built = builder(ctx)
    if ctx.history:
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
    metrics = result.get("metrics")
    for source in (result, metrics if isinstance(metrics, dict) else {}):
        for key, value in source.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                found[key] = value
    return found
