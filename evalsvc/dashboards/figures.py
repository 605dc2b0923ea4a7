"""Stored results → plotly figures. Reads a run's result JSON; never recomputes a metric.

One builder per job kind; each returns a list of (title, figure) so that the
dashboard and, later, reports render the same figures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go

Figure = tuple[str, go.Figure]
_BUILDERS: dict[str, Callable[[dict[str, Any]], list[Figure]]] = {}

_LAYOUT = {"template": "plotly_white", "margin": {"l": 60, "r": 20, "t": 50, "b": 50}, "height": 420}


def builder(
    kind: str,
) -> Callable[[Callable[[dict[str, Any]], list[Figure]]], Callable[[dict[str, Any]], list[Figure]]]:
    def register(fn: Callable[[dict[str, Any]], list[Figure]]) -> Callable[[dict[str, Any]], list[Figure]]:
        _BUILDERS[kind] = fn
        return fn

    return register


def figures_for(kind: str, result: dict[str, Any] | None) -> list[Figure]:
    if not result or kind not in _BUILDERS:
        return []
    return _BUILDERS[kind](result)


@builder("evaluate")
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
    fig.update_layout(title="Confusion matrix", xaxis_title="Predicted label", yaxis_title="True label", **_LAYOUT)
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
    fig.update_layout(title="Predicted vs actual", xaxis_title="Actual", yaxis_title="Predicted", **_LAYOUT)
    return fig


def residuals_figure(result: dict[str, Any]) -> go.Figure:
    y_true, y_pred = _residual_points(result)
    residuals = [t - p for t, p in zip(y_true, y_pred, strict=True)]
    fig = go.Figure(go.Scattergl(x=y_pred, y=residuals, mode="markers", marker={"size": 5, "opacity": 0.6}))
    fig.add_hline(y=0, line_dash="dash")
    fig.update_layout(title="Residuals", xaxis_title="Predicted", yaxis_title="Actual − predicted", **_LAYOUT)
    return fig


def _target_label(target: dict[str, Any]) -> str:
    name = target.get("model")
    base = f"{target.get('backend')}/{target.get('device')}/{target.get('precision')}"
    return f"{name} ({base})" if name else base


@builder("parity")
def parity_figures(result: dict[str, Any]) -> list[Figure]:
    ok = [c for c in result.get("candidates", []) if c.get("status") == "ok"]
    if not ok:
        return []
    labels = [_target_label(c["target"]) for c in ok]
    diff = go.Figure()
    outputs = sorted({o["name"] for c in ok for o in c["outputs"]})
    for name in outputs:
        values = [next((o["max_abs"] for o in c["outputs"] if o["name"] == name), None) for c in ok]
        # A zero difference cannot sit on a log axis; show it at the floor instead.
        diff.add_trace(go.Bar(x=labels, y=[max(v, 1e-12) if v is not None else None for v in values], name=name))
    diff.update_layout(
        title="Largest absolute output difference from the reference",
        yaxis_type="log",
        yaxis_title="max |Δ|",
        barmode="group",
        **_LAYOUT,
    )
    figures: list[Figure] = [("Output differences", diff)]
    agreement = [
        (label, o["label_agreement"])
        for label, c in zip(labels, ok, strict=True)
        for o in c["outputs"][:1]
        if o.get("label_agreement") is not None
    ]
    if agreement:
        fig = go.Figure(go.Bar(x=[a for a, _ in agreement], y=[100 * v for _, v in agreement]))
        fig.update_layout(title="Label agreement with the reference", yaxis_title="% of rows", **_LAYOUT)
        fig.update_yaxes(range=[min(90.0, min(100 * v for _, v in agreement) - 1), 100.5])
        figures.append(("Label agreement", fig))
    return figures


@builder("quantize")
def quantize_figures(result: dict[str, Any]) -> list[Figure]:
    ok = [v for v in result.get("variants", []) if v.get("status") == "ok"]
    if not ok:
        return []
    names = ["parent"] + [v["variant"] for v in ok]
    sizes = [result["parent"]["size_bytes"]] + [v["size_bytes"] for v in ok]
    size = go.Figure(go.Bar(x=names, y=[s / 1024 for s in sizes], text=[f"{s / 1024:.1f}" for s in sizes]))
    size.update_layout(title="Model size", yaxis_title="KiB", **_LAYOUT)
    figures: list[Figure] = [("Size", size)]
    seconds = [result["parent"].get("seconds")] + [v.get("seconds") for v in ok]
    if all(s for s in seconds):
        rows = result.get("rows") or 1
        latency = go.Figure(go.Bar(x=names, y=[1e6 * s / rows for s in seconds]))
        latency.update_layout(title="Time per row (ONNX Runtime, CPU)", yaxis_title="µs per row", **_LAYOUT)
        figures.append(("Time per row", latency))
    metric = next((m for m in ("accuracy", "r2") if (result["parent"].get("metrics") or {}).get(m) is not None), None)
    if metric:
        values = [result["parent"]["metrics"][metric]] + [(v.get("metrics") or {}).get(metric) for v in ok]
        quality = go.Figure(go.Bar(x=names, y=values, text=[f"{v:.4f}" if v is not None else "" for v in values]))
        quality.update_layout(title=f"{metric} on the labelled rows", yaxis_title=metric, **_LAYOUT)
        figures.append(("Quality", quality))
    return figures
