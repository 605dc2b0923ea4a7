"""The evaluation's figures: a confusion matrix, ROC and precision-recall curves, a reliability diagram and
a threshold sweep, or predicted-vs-actual and residuals. Every number is read from the stored result."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from ..base import LAYOUT, Figure

#: Most curves drawn on one plot (the result stores at most this many classes' curves too).
MAX_DRAWN_CURVES = 10


def evaluate_figures(result: dict[str, Any]) -> list[Figure]:
    if result.get("task") == "classification":
        figures: list[Figure] = [("Confusion matrix", confusion_matrix_figure(result))]
        classes = curve_classes(result)
        if classes:
            figures.append(("ROC curve", roc_figure([(_class_name(result, c), c) for c in classes])))
            figures.append(("Precision-recall curve", pr_figure([(_class_name(result, c), c) for c in classes])))
        if result.get("calibration"):
            figures.append(("Calibration", calibration_figure(result["calibration"])))
        if result.get("threshold_sweep"):
            figures.append(("Threshold sweep", threshold_figure(result["threshold_sweep"])))
        return figures
    return [("Predicted vs actual", predicted_vs_actual_figure(result)), ("Residuals", residuals_figure(result))]


def confusion_matrix_figure(result: dict[str, Any]) -> go.Figure:
    labels = [str(label) for label in result.get("labels", [])]
    matrix = result.get("confusion_matrix", [])
    fig = go.Figure(
        go.Heatmap(
            z=matrix,
            x=labels,
            y=labels,
            colorscale="Blues",
            text=matrix,
            texttemplate="%{text}",
            hovertemplate="true %{y} → predicted %{x}: %{z}<extra></extra>",
        )
    )
    fig.update_layout(title="Confusion matrix", xaxis_title="Predicted label", yaxis_title="True label", **LAYOUT)
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category")
    return fig


def _residual_points(result: dict[str, Any]) -> tuple[list[float], list[float]]:
    residuals = result.get("residuals") or {}
    return list(residuals.get("y_true", [])), list(residuals.get("y_pred", []))


def predicted_vs_actual_figure(result: dict[str, Any]) -> go.Figure:
    y_true, y_pred = _residual_points(result)
    fig = go.Figure(go.Scatter(x=y_true, y=y_pred, mode="markers", marker={"size": 5, "opacity": 0.6}, name="rows"))
    if y_true:
        lo, hi = min(y_true + y_pred), max(y_true + y_pred)
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line={"dash": "dash"}, name="perfect"))
    fig.update_layout(title="Predicted vs actual", xaxis_title="Actual", yaxis_title="Predicted", **LAYOUT)
    return fig


def residuals_figure(result: dict[str, Any]) -> go.Figure:
    y_true, y_pred = _residual_points(result)
    residuals = [t - p for t, p in zip(y_true, y_pred, strict=True)]
    fig = go.Figure(go.Scatter(x=y_pred, y=residuals, mode="markers", marker={"size": 5, "opacity": 0.6}))
    fig.add_hline(y=0, line_dash="dash")
    fig.update_layout(title="Residuals", xaxis_title="Predicted", yaxis_title="Actual − predicted", **LAYOUT)
    return fig


def curve_classes(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The stored per-class curves (binary: the positive class only), at most :data:`MAX_DRAWN_CURVES`."""
    curves = result.get("curves") or {}
    return [c for c in curves.get("classes") or [] if c.get("roc") and c.get("pr")][:MAX_DRAWN_CURVES]


def _class_name(result: dict[str, Any], curve: dict[str, Any]) -> str:
    binary = (result.get("curves") or {}).get("average") == "binary"
    return f"positive class {curve.get('label')}" if binary else f"class {curve.get('label')}"


def roc_figure(curves: list[tuple[str, dict[str, Any]]]) -> go.Figure:
    """One ROC line per (name, stored curve), the area in the legend, and the chance diagonal."""
    fig = go.Figure()
    for name, curve in curves:
        roc = curve["roc"]
        fig.add_trace(
            go.Scatter(
                x=roc["fpr"],
                y=roc["tpr"],
                mode="lines",
                name=f"{name} (AUC {roc['auc']:.3f})",
                hovertemplate="FPR %{x:.3f}, TPR %{y:.3f}<extra></extra>",
            )
        )
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dash", "color": "#999"}, name="chance"))
    fig.update_layout(title="ROC curve", xaxis_title="False positive rate", yaxis_title="True positive rate", **LAYOUT)
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1.02])
    return fig


def pr_figure(curves: list[tuple[str, dict[str, Any]]]) -> go.Figure:
    """One precision-recall line per (name, stored curve), average precision in the legend."""
    fig = go.Figure()
    for name, curve in curves:
        pr = curve["pr"]
        fig.add_trace(
            go.Scatter(
                x=pr["recall"],
                y=pr["precision"],
                mode="lines",
                line={"shape": "hv"},
                name=f"{name} (AP {pr['average_precision']:.3f})",
                hovertemplate="recall %{x:.3f}, precision %{y:.3f}<extra></extra>",
            )
        )
    if len(curves) == 1:
        curve = curves[0][1]
        rate = curve["positives"] / max(curve["positives"] + curve["negatives"], 1)
        fig.add_trace(
            go.Scatter(
                x=[0, 1], y=[rate, rate], mode="lines", line={"dash": "dash", "color": "#999"}, name="positive rate"
            )
        )
    fig.update_layout(title="Precision-recall curve", xaxis_title="Recall", yaxis_title="Precision", **LAYOUT)
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1.02])
    return fig


def calibration_figure(calibration: dict[str, Any]) -> go.Figure:
    """Reliability diagram: the observed rate against the mean predicted probability per bin."""
    what = "positive class" if calibration.get("of") == "positive class" else "top label"
    observed = "Fraction positive" if what == "positive class" else "Fraction correct"
    fig = go.Figure(
        go.Scatter(
            x=calibration.get("mean_predicted", []),
            y=calibration.get("fraction_positive", []),
            mode="lines+markers",
            name=f"model (Brier {calibration.get('brier', 0):.3f}, ECE {calibration.get('ece', 0):.3f})",
            customdata=calibration.get("counts", []),
            hovertemplate="predicted %{x:.3f}, observed %{y:.3f} (%{customdata} rows)<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dash", "color": "#999"}, name="calibrated")
    )
    fig.update_layout(
        title=f"Calibration ({what})", xaxis_title="Mean predicted probability", yaxis_title=observed, **LAYOUT
    )
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1.02])
    return fig


def threshold_figure(sweep: dict[str, Any]) -> go.Figure:
    """Precision, recall, F1 and false positive rate by threshold; the operating threshold marked."""
    fig = go.Figure()
    for key, name in (("precision", "precision"), ("recall", "recall"), ("f1", "F1"), ("fpr", "FPR")):
        fig.add_trace(
            go.Scatter(
                x=sweep.get("thresholds", []),
                y=sweep.get(key, []),
                mode="lines",
                line={"shape": "hv"},
                name=name,
                hovertemplate=f"threshold %{{x:.4g}}: {name} %{{y:.3f}}<extra></extra>",
            )
        )
    operating = sweep.get("operating") or {}
    if operating.get("threshold") is not None:
        t = operating["threshold"]
        fig.add_trace(
            go.Scatter(
                x=[t, t],
                y=[0, 1],
                mode="lines",
                line={"dash": "dash", "color": "#222"},
                name=f"operating threshold {t:g}",
            )
        )
    fig.update_layout(
        title=f"Threshold sweep (positive class {sweep.get('positive_label')})",
        xaxis_title="Threshold (positive when score ≥ threshold)",
        yaxis_title="Rate",
        **LAYOUT,
    )
    fig.update_yaxes(range=[0, 1.02])
    return fig
