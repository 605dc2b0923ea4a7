"""The `explain` kind's params for a text model on a table with its text column: token attributions.

Refused with a message (400): a method that does not explain tokens (each
row against its padding baseline: kernel_shap), a data set without the text
column the model's processing spec reads, a filter by a column, tabular-only
options, rows that do not exist and a budget that cannot be met.
"""

from __future__ import annotations

from typing import Any

from evalsvc.core.exceptions import ValidationFailed
from evalsvc.registry.models import DatasetVersion, ModelVersion
from workers.engine.explain.budget import estimate_model_rows
from workers.engine.explain.params import TEXT_METHODS, Common, MethodInfo

TABULAR_ONLY = ("time_budget_s", "cohort_by", "feature_columns", "reference_dataset", "patch_size", "superpixels")


def _fail(message: str) -> None:
    raise ValidationFailed(message)


def clean_text_params(
    data: dict[str, Any], info: MethodInfo, method_params: Common, model: ModelVersion, dataset: DatasetVersion
) -> dict[str, Any]:
    spec = (model.processing or {}).get("input") or {}
    column = spec.get("text_column")
    if info.name not in TEXT_METHODS:
        _fail(
            f"text explanations attribute the output to tokens with {', '.join(TEXT_METHODS)} (each row against "
            f"its padding baseline); {info.name} is not available for text models"
        )
    if column not in dataset.column_names:
        _fail(f"this model reads the text column {column!r}; data set {dataset} has no such column")
    if not model.tokenizer_storage_key:
        _fail("this text model has no tokenizer.json; register the model version with its tokenizer")
    given = [k for k in TABULAR_ONLY if data.get(k) is not None]
    if given:
        _fail(f"{', '.join(given)} apply to tabular or image explanations, not to a text model")
    label = data.get("label_column") or dataset.label_column
    data["label_column"] = label
    rows = data["rows"]
    if "indices" in rows:
        bad = [i for i in rows["indices"] if i >= dataset.rows]
        if bad:
            _fail(
                f"rows {', '.join(map(str, bad[:5]))} do not exist: data set {dataset} has {dataset.rows} rows "
                f"(0-{dataset.rows - 1})"
            )
    elif rows["filter"] == "column_value":
        _fail("text explanations choose rows by index, misclassified or predicted_class, not by a column's value")
    elif rows["filter"] == "misclassified" and not label:
        _fail(f"choosing misclassified rows needs a label column; data set {dataset} has none")
    elif rows["filter"] == "predicted_class" and "value" not in rows:
        _fail("the predicted_class filter needs a value")
    n_rows = len(rows.get("indices") or []) or rows.get("limit", 20)
    n_rows += min(data["global_rows"], dataset.rows)
    tokens = int(spec.get("max_length") or 128)
    estimate = estimate_model_rows(info.name, method_params, rows=n_rows, features=tokens, background_rows=1)
    if estimate > data["max_model_rows"]:
        _fail(
            f"this explanation would evaluate about {estimate:,} model rows, more than max_model_rows "
            f"({data['max_model_rows']:,}); explain fewer rows or lower the method's sample count"
        )
    data["estimated_model_rows"] = estimate
    data["method_params"] = method_params.__dict__
    return data
