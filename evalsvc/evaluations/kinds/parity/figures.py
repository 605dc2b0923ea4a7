"""The parity job's figures: largest output difference and label agreement per candidate."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from ..base import LAYOUT, Figure


def _target_label(target: dict[str, Any]) -> str:
    name = target.get("model")
    base = f"{target.get('backend')}/{target.get('device')}/{target.get('precision')}"
    return f"{name} ({base})" if name else base


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
        **LAYOUT,
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
        fig.update_layout(title="Label agreement with the reference", yaxis_title="% of rows", **LAYOUT)
        fig.update_yaxes(range=[min(90.0, min(100 * v for _, v in agreement) - 1), 100.5])
        figures.append(("Label agreement", fig))
    return figures
