"""A job's report section: its method, results tables and notes, one builder per kind.

Builders read the run's stored result and parameters; they never recompute a
metric. A kind without a builder gets the generic one, which lays out every
scalar result and every table-shaped part of the result, so a new job kind
appears in reports before anyone writes its section. Figures come from
``evalsvc.dashboards.figures`` (the dashboard's own), drawn by the document
builder.
"""

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


# --- evaluate ------------------------------------------------------------------

METRIC_LABELS = {
    "classification": [
        ("accuracy", "Accuracy"),
        ("precision", "Precision"),
        ("recall", "Recall"),
        ("f1", "F1"),
        ("roc_auc", "ROC AUC"),
    ],
    "regression": [("mae", "MAE"), ("rmse", "RMSE"), ("r2", "R²")],
}


@section("evaluate")
def evaluate_section(ctx: JobContext) -> Section:
    result, params = ctx.result, ctx.params
    task = result.get("task") or params.get("task", "")
    metrics = result.get("metrics") or {}
    features = result.get("feature_columns") or params.get("feature_columns") or []
    method = (
        f"Every row of {ctx.dataset or 'the data set'} ({result.get('rows', '?')} rows) was run through the model "
        f"with {params.get('backend', 'onnxruntime')} on {params.get('device', 'cpu')}"
        f"{' at ' + params['precision'] if params.get('precision') else ''}, "
        f"in batches of {result.get('batch_size', params.get('batch_size'))}; the predictions were compared with "
        f"the label column {result.get('label_column') or params.get('label_column')!r} as a {task} task, "
        f"using {len(features)} feature column{'s' if len(features) != 1 else ''}."
    )
    if task == "classification":
        average = metrics.get("average")
        if average == "binary":
            method += f" Precision, recall, F1 and ROC AUC refer to the positive class {metrics.get('positive_label')}."
        elif average:
            method += f" Precision, recall and F1 are {average}-averaged over the classes; ROC AUC is one-vs-rest."
    tables: list[Table] = [
        {
            "title": "Metrics",
            "columns": ["Metric", "Value"],
            "rows": [[label, metrics.get(key)] for key, label in METRIC_LABELS.get(task, []) if key in metrics],
        }
    ]
    notes: list[str] = []
    per_class = result.get("per_class") or {}
    if per_class:
        tables.append(
            {
                "title": "Per class",
                "columns": ["Class", "Precision", "Recall", "F1", "Support"],
                "rows": [
                    [label, m.get("precision"), m.get("recall"), m.get("f1"), m.get("support")]
                    for label, m in per_class.items()
                ],
            }
        )
    labels = result.get("labels") or []
    matrix = result.get("confusion_matrix") or []
    if matrix:
        tables.append(
            {
                "title": "Confusion matrix (rows: true label, columns: predicted label)",
                "columns": ["True \\ predicted", *[str(label) for label in labels]],
                "rows": [[str(labels[i]) if i < len(labels) else i, *row] for i, row in enumerate(matrix)],
            }
        )
    if result.get("labels_source"):
        notes.append(f"Class order taken from the {result['labels_source']}.")
    if task == "regression" and result.get("residuals"):
        shown = len((result.get("residuals") or {}).get("y_true", []))
        notes.append(f"The residual plots show {shown} of {result.get('rows', '?')} rows, evenly spaced in the file.")
    if features:
        notes.append("Feature columns, in model input order: " + ", ".join(str(f) for f in features) + ".")
    notes += [str(w) for w in result.get("warnings") or []]
    return Section(method=method, tables=tables, notes=notes)


# --- any other kind ---------------------------------------------------------------


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
