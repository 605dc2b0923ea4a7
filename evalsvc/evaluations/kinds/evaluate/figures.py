"""The evaluation's figures: a confusion matrix, or predicted-vs-actual and residuals."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from ..base import LAYOUT, Figure


def evaluate_figures(result: dict[str, Any]) -> list[Figure]:
    if result.get("task") == "classification":
        return [("Confusion matrix", confusion_matrix_figure(result))]
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
    fig = go.Figure(go.Scattergl(x=y_true, y=y_pred, mode="markers", marker={"size": 5, "opacity": 0.6}, name="rows"))
    if y_true:
        lo, hi = min(y_true + y_pred), max(y_true + y_pred)
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line={"dash": "dash"}, name="perfect"))
    fig.update_layout(title="Predicted vs actual", xaxis_title="Actual", yaxis_title="Predicted", **LAYOUT)
    return fig


def residuals_figure(result: dict[str, Any]) -> go.Figure:
    y_true, y_pred = _residual_points(result)
    residuals = [t - p for t, p in zip(y_true, y_pred, strict=True)]
    fig = go.Figure(go.Scattergl(x=y_pred, y=residuals, mode="markers", marker={"size": 5, "opacity": 0.6}))
    fig.add_hline(y=0, line_dash="dash")
    fig.update_layout(title="Residuals", xaxis_title="Predicted", yaxis_title="Actual − predicted", **LAYOUT)
    return fig
