"""The generic parts of a kind: a section (and run page tables) for any result, and the history table."""

from __future__ import annotations

from typing import Any

from .base import MAX_TABLE_ROWS, CompareRun, Comparison, JobContext, MetricRow, Section, Table


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def generic_section(ctx: JobContext) -> Section:
    """Every scalar of the result in one table, and each table-shaped part in its own."""
    result = ctx.result
    tables: list[Table] = []
    scalars = [[key, value] for key, value in result.items() if _is_scalar(value)]
    if scalars:
        tables.append({"title": "Results", "columns": ["Result", "Value"], "rows": scalars})
    for key, value in result.items():
        if key not in _SKIPPED and not _is_scalar(value):
            tables += _tables(_title(key), value, depth=0)
    warnings = result.get("warnings")
    notes = [str(w) for w in warnings] if isinstance(warnings, list) else []
    method = f"{ctx.label} job" + (f" on {ctx.dataset}" if ctx.dataset else "") + "; its parameters are listed below."
    return Section(method=method, tables=tables[:MAX_TABLES], notes=notes)


#: Parts of a result that are not results: shown elsewhere (environment, notes) or too raw for a table.
_SKIPPED = frozenset({"errors", "warnings", "backend", "reference_backend"})
MAX_TABLES = 40
MAX_COLUMNS = 12
_MAX_DEPTH = 3


def _title(key: str) -> str:
    return key.replace("_", " ").capitalize()


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    """Scalars of a record, with one level of nested objects as "outer.inner"."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if _is_scalar(value):
            flat[key] = value
        elif isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items() if _is_scalar(v)})
    return flat


def _label(record: dict[str, Any], index: int) -> str:
    """What a reader calls this record: its name, or its first nested object's values ("openvino/cpu/fp32")."""
    for key in ("name", "variant", "model", "label", "id"):
        if isinstance(record.get(key), str) and record[key]:
            return record[key]
    for value in record.values():
        if isinstance(value, dict):
            parts = [str(v) for v in value.values() if _is_scalar(v) and v not in (None, "")]
            if parts:
                return "/".join(parts)
    return f"#{index + 1}"


def _tables(title: str, value: Any, *, depth: int) -> list[Table]:
    if depth > _MAX_DEPTH:
        return []
    tables: list[Table] = []
    if isinstance(value, dict) and value:
        flats = [_flat(v) for v in value.values() if isinstance(v, dict)]
        if len(flats) == len(value) and all(flats):
            # {"row": {"column": scalar}}: one table, rows by key.
            columns = list(dict.fromkeys(c for f in flats for c in f))[:MAX_COLUMNS]
            rows = [[k, *[f.get(c) for c in columns]] for k, f in zip(value, flats, strict=True)]
            return [_truncated({"title": title, "columns": ["", *columns], "rows": rows})]
        scalars = [[k, v] for k, v in value.items() if _is_scalar(v)]
        if scalars:
            tables.append({"title": title, "columns": ["Name", "Value"], "rows": scalars})
        for key, inner in value.items():
            if not _is_scalar(inner):
                tables += _tables(f"{title} › {_title(key)}", inner, depth=depth + 1)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        flats = [_flat(v) for v in value]
        columns = list(dict.fromkeys(c for f in flats for c in f))[:MAX_COLUMNS]
        if columns:
            tables.append(
                _truncated({"title": title, "columns": columns, "rows": [[f.get(c) for c in columns] for f in flats]})
            )
        # Lists of records inside each record (a candidate's outputs): a table per record.
        for index, record in enumerate(value[:10]):
            for key, inner in record.items():
                if isinstance(inner, list) and inner and all(isinstance(v, dict) for v in inner):
                    tables += _tables(f"{title} › {_label(record, index)} › {_title(key)}", inner, depth=depth + 1)
    return tables


def _truncated(table: Table) -> Table:
    rows = table["rows"]
    if len(rows) > MAX_TABLE_ROWS:
        table["note"] = (
            f"First {MAX_TABLE_ROWS} of {len(rows)} rows; the report's JSON has the job's id to fetch them all."
        )
        table["rows"] = rows[:MAX_TABLE_ROWS]
    return table


def history_table(ctx: JobContext) -> Table:
    """One row per run of the kind on this model version, oldest first: the drift history."""
    keys: dict[str, None] = {}
    for entry in ctx.history:
        for key, value in (entry.get("result") or {}).items():
            if _is_scalar(value) and not isinstance(value, str):
                keys.setdefault(key, None)
    columns = list(keys)[:6]
    return {
        "title": f"{ctx.label} history on this model version",
        "columns": ["Finished", "Job", "Data set", *columns],
        "rows": [
            [h["finished_at"], h["id"][:8], h.get("dataset") or "—", *[(h.get("result") or {}).get(c) for c in columns]]
            for h in ctx.history
        ],
    }


#: Metrics where a lower value is the better one (errors, losses, times); the generic comparison knows no more.
_LOWER_IS_BETTER = ("mae", "rmse", "mse", "loss", "brier", "ece", "error", "latency")
_LOWER_IS_BETTER_UNITS = ("_ms", "_s", "_ns")


def _numbers(result: dict[str, Any]) -> dict[str, float]:
    """The numeric scalars of a result's ``metrics`` (or, without one, of the result itself)."""
    found = result.get("metrics")
    source = found if isinstance(found, dict) else result
    return {
        key: value
        for key, value in source.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and key not in ("duration_s",)
    }


def generic_compare(runs: list[CompareRun]) -> Comparison:
    """Every numeric metric any of the runs stores, one row each (``None`` where a run lacks it); no figures."""
    numbers = [_numbers(run.result) for run in runs]
    keys: list[str] = []
    for found in numbers:
        keys += [key for key in found if key not in keys]
    rows = [
        MetricRow(
            key=key,
            label=_title(key),
            values=[found.get(key) for found in numbers],
            better="lower"
            if any(part in key for part in _LOWER_IS_BETTER) or key.endswith(_LOWER_IS_BETTER_UNITS)
            else None,
        )
        for key in keys
    ]
    return Comparison(metrics=rows, notes=["Every numeric metric the runs store, as stored."] if rows else [])
