"""The evaluation's tables, computed once from the stored result for the run page and the report."""

from __future__ import annotations

from typing import Any

from ..base import Rows

#: Headline metrics per task, in the order a reviewer reads them.
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


def metric_rows(result: dict[str, Any], task: str | None = None) -> Rows:
    """The headline metrics present in the result: key, label, value."""
    metrics = result.get("metrics") or {}
    return [
        {"key": key, "label": label, "value": metrics.get(key)}
        for key, label in METRIC_LABELS.get(task or result.get("task") or "", [])
        if key in metrics
    ]


def per_class_rows(result: dict[str, Any]) -> Rows:
    return [
        {"label": label, "precision": m.get("precision"), "recall": m.get("recall"), "f1": m.get("f1"),
         "support": m.get("support")}
        for label, m in (result.get("per_class") or {}).items()
    ]  # fmt: skip


def page_context(result: dict[str, Any]) -> dict[str, Any]:
    metrics = result.get("metrics") or {}
    return {
        "metrics": metric_rows(result),
        "averaging": metrics.get("average"),
        "positive_label": metrics.get("positive_label"),
        "per_class": per_class_rows(result),
    }
