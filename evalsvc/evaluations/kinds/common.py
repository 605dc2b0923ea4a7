"""Parameter choices and table pieces that several kinds share."""

from __future__ import annotations

from typing import Any

from .base import Table

DEVICES = ["cpu", "cuda", "gpu", "auto"]
PRECISIONS = ["fp32", "fp16", "int8"]

#: Rows that differ most, per candidate or variant, shown in the report (the result keeps more).
WORST_ROWS_SHOWN = 5


def target_name(target: dict[str, Any]) -> str:
    """An engine target as people name it: "openvino/cpu/fp32"."""
    return f"{target.get('backend')}/{target.get('device')}/{target.get('precision')}"


def share(value: float | None) -> str | None:
    return None if value is None else f"{100 * value:.2f} %"


def worst_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows that differ most, as shown on the run page and in the report."""
    return [
        {"row": r.get("row"), "max_abs_diff": r.get("max_abs_diff"), "reference_label": r.get("reference_label"),
         "candidate_label": r.get("candidate_label")}
        for r in rows[:WORST_ROWS_SHOWN]
    ]  # fmt: skip


def worst_rows_table(title: str, rows: list[dict[str, Any]]) -> Table:
    return {
        "title": title,
        "columns": ["Row", "max |Δ|", "Reference label", "Candidate label"],
        "rows": [list(r.values()) for r in worst_rows(rows)],
    }


def map_columns(data: dict[str, Any], model: Any, dataset: Any, label: str | None) -> dict[str, Any]:
    """Match the data set's columns to the model's features by name; record how, in ``data["column_mapping"]``.

    Explicit ``feature_columns`` win. A tabular processing spec names its own
    columns. Otherwise the model version's ``feature_names`` (declared, or
    from its file) are looked up by name: a missing one is a 400 naming it,
    and columns the model does not take are ignored and listed. Only a model
    that names no features gets the data set's columns by position, and the
    run records that it did.
    """
    from evalsvc.core.exceptions import ValidationFailed

    columns = list(dataset.column_names)
    features = data.get("feature_columns")
    if features:
        method = "by name: feature_columns"
    elif model.processing and ((model.processing.get("input") or {}).get("feature_columns")):
        features, method = list(model.processing["input"]["feature_columns"]), "by name: processing spec"
    elif model.feature_names:
        features, method = (
            list(model.feature_names),
            f"by name: the model version's feature names ({model.feature_names_source})",
        )
        data["feature_columns"] = features
    else:
        taken = [c for c in columns if c != label]
        return {**data, "column_mapping": {
            "method": "by position",
            "note": "the model version names no features, so the data set's columns were fed in file order; "
                    "declare its feature_names to match them by name",
            "features": taken, "ignored_columns": []}}  # fmt: skip
    # A processing spec's own columns are checked with the rest of the spec, by the input checks.
    missing = [c for c in features if c not in columns] if method != "by name: processing spec" else []
    if missing:
        raise ValidationFailed(
            f"data set {dataset} lacks the model's feature column{'s' if len(missing) != 1 else ''} "
            f"{', '.join(missing)} (matched by name; it has {', '.join(columns[:30])})"
        )
    if label is not None and label in features:
        raise ValidationFailed(f"the label column {label!r} cannot also be a feature")
    ignored = [c for c in columns if c not in features and c != label]
    return {**data, "column_mapping": {"method": method, "features": list(features), "ignored_columns": ignored}}
