"""Evaluations side by side: the headline metrics, curve areas and calibration, and overlaid curves."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from ..base import LAYOUT, CompareRun, Comparison, Figure, MetricRow
from .figures import MAX_DRAWN_CURVES, curve_classes, pr_figure, roc_figure
from .tables import METRIC_LABELS

_HIGHER = {"accuracy", "precision", "recall", "f1", "roc_auc", "r2", "average_precision"}


def _extras(result: dict[str, Any]) -> dict[str, Any]:
    """Numbers beyond the headline: the positive class's average precision, Brier score and ECE."""
    classes = curve_classes(result)
    calibration = result.get("calibration") or {}
    binary = (result.get("curves") or {}).get("average") == "binary"
    return {
        "average_precision": (classes[0].get("pr") or {}).get("average_precision") if binary and classes else None,
        "brier": calibration.get("brier"),
        "ece": calibration.get("ece"),
    }


def evaluate_compare(runs: list[CompareRun]) -> Comparison:
    tasks = [run.result.get("task") for run in runs]
    rows: list[MetricRow] = []
    keys: list[tuple[str, str]] = []
    for task in dict.fromkeys(t for t in tasks if t):
        keys += [k for k in METRIC_LABELS.get(task or "", []) if k not in keys]
    for key, label in keys:
        values = [(run.result.get("metrics") or {}).get(key) for run in runs]
        if any(v is not None for v in values):
            rows.append(MetricRow(key, label, values, "higher" if key in _HIGHER else "lower"))
    extras = [_extras(run.result) for run in runs]
    for key, label, better in (
        ("average_precision", "Average precision", "higher"),
        ("brier", "Brier score", "lower"),
        ("ece", "Expected calibration error", "lower"),
    ):
        values = [e[key] for e in extras]
        if any(v is not None for v in values):
            rows.append(MetricRow(key, label, values, better))
    rows.append(MetricRow("rows", "Rows", [run.result.get("rows") for run in runs], None))

    figures: list[Figure] = []
    notes: list[str] = []
    if len(set(tasks)) > 1:
        notes.append("The runs evaluate different tasks: only the metrics each has are filled in.")
    curves: list[tuple[str, dict[str, Any]]] = []
    for run in runs:
        classes = curve_classes(run.result)
        binary = (run.result.get("curves") or {}).get("average") == "binary"
        for c in classes:
            curves.append((run.name if binary else f"{run.name} · class {c.get('label')}", c))
    if curves:
        drawn = curves[:MAX_DRAWN_CURVES]
        if len(curves) > len(drawn):
            notes.append(f"The curve figures draw {len(drawn)} of {len(curves)} curves (the first runs' first).")
        roc, pr = roc_figure(drawn), pr_figure(drawn)
        roc.update_layout(title="ROC curves")
        pr.update_layout(title="Precision-recall curves")
        figures += [("ROC curves", roc), ("Precision-recall curves", pr)]
    reliability: list[tuple[str, dict[str, Any]]] = [
        (run.name, run.result["calibration"]) for run in runs if run.result.get("calibration")
    ]
    if reliability:
        fig = go.Figure()
        for name, cal in reliability:
            fig.add_trace(
                go.Scatter(x=cal["mean_predicted"], y=cal["fraction_positive"], mode="lines+markers", name=name)
            )
        fig.add_trace(
            go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dash", "color": "#999"}, name="calibrated")
        )
        fig.update_layout(
            title="Calibration", xaxis_title="Mean predicted probability", yaxis_title="Observed rate", **LAYOUT
        )
        figures.append(("Calibration", fig))
    return Comparison(metrics=rows, figures=figures, notes=notes)
