"""A monitor's timeline: corrected p-value per column per check, the threshold, alerts marked."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from evalsvc.evaluations.kinds.base import LAYOUT

#: Columns drawn: the ones that came closest to drifting.
MAX_LINES = 10
FLOOR = 1e-300


def timeline(checks: list[Any], *, alpha: float, alerted: set[str]) -> go.Figure:
    done = [c for c in sorted(checks, key=lambda c: c.created_at) if c.status == "succeeded"]
    series: dict[str, list[tuple[Any, float]]] = {}
    for check in done:
        for f in check.result.get("features") or []:
            if f.get("p_adjusted") is not None:
                series.setdefault(f["name"], []).append((check.finished_at, max(f["p_adjusted"], FLOOR)))
    closest = sorted(series, key=lambda n: min(p for _, p in series[n]))[:MAX_LINES]
    fig = go.Figure()
    for name in closest:
        fig.add_trace(go.Scatter(x=[t for t, _ in series[name]], y=[p for _, p in series[name]], name=name,
                                 mode="lines+markers"))  # fmt: skip
    fig.add_hline(y=alpha, line_dash="dash", line_color="#d62728", annotation_text=f"α = {alpha}")
    flagged = [c for c in checks if str(c.pk) in alerted and c.finished_at]
    if flagged:
        lows = [
            max(min((f["p_adjusted"] for f in c.result.get("features") or [] if f.get("p_adjusted") is not None),
                    default=alpha), FLOOR)
            for c in flagged
        ]  # fmt: skip
        fig.add_trace(go.Scatter(x=[c.finished_at for c in flagged], y=lows, mode="markers", name="alert",
                                 marker={"symbol": "x", "size": 14, "color": "#d62728"}))  # fmt: skip
    fig.update_layout(title="Corrected p-value per column, per check", yaxis_type="log",
                      yaxis_title="p (corrected)", **LAYOUT)  # fmt: skip
    return fig


#: Metrics drawn per check once labels arrived (all on the 0–1 scale of nDCG).
SCORES = (("accuracy", "accuracy"), ("f1", "F1"), ("roc_auc", "ROC AUC"))


def model_timeline(checks: list[Any], *, threshold: float, alerted: set[str]) -> go.Figure | None:
    """Attribution nDCG (with its threshold) and, where labels arrived, the model's metrics, per check."""
    done = [c for c in sorted(checks, key=lambda c: c.created_at) if c.status == "succeeded" and c.finished_at]
    ndcg = [(c, c.result["attribution"]["ndcg"]) for c in done if (c.result.get("attribution") or {}).get("ndcg")
            is not None]  # fmt: skip
    scores = {
        title: [(c, c.result["performance"]["metrics"][key]) for c in done
                if ((c.result.get("performance") or {}).get("metrics") or {}).get(key) is not None]
        for key, title in SCORES
    }  # fmt: skip
    if not ndcg and not any(scores.values()):
        return None
    fig = go.Figure()
    if ndcg:
        fig.add_trace(go.Scatter(x=[c.finished_at for c, _ in ndcg], y=[v for _, v in ndcg],
                                 name="attribution nDCG", mode="lines+markers"))  # fmt: skip
        fig.add_hline(
            y=threshold, line_dash="dash", line_color="#d62728", annotation_text=f"nDCG threshold {threshold}"
        )
        flagged = [(c, v) for c, v in ndcg if str(c.pk) in alerted]
        if flagged:
            fig.add_trace(go.Scatter(x=[c.finished_at for c, _ in flagged], y=[v for _, v in flagged], mode="markers",
                                     name="alert", marker={"symbol": "x", "size": 14, "color": "#d62728"}))  # fmt: skip
    for title, points in scores.items():
        if points:
            fig.add_trace(go.Scatter(x=[c.finished_at for c, _ in points], y=[v for _, v in points],
                                     name=f"{title} (labelled rows)", mode="lines+markers"))  # fmt: skip
    fig.update_layout(title="The model on each window: attribution nDCG and, once labels arrived, its metrics",
                      yaxis_range=[0, 1.05], **LAYOUT)  # fmt: skip
    return fig
