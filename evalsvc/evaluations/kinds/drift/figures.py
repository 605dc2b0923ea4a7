"""The drift job's figures: columns ranked by effect size, reference-vs-current distributions."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from ..base import LAYOUT, Figure

#: Distribution figures drawn, most drifted first.
MAX_DISTRIBUTIONS = 6


def ranked(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Columns by PSI, largest first (errors last)."""
    features = result.get("features") or []
    return sorted(features, key=lambda f: (f.get("psi") is None, -(f.get("psi") or 0.0)))


def _distribution(feature: dict[str, Any]) -> go.Figure | None:
    hist = feature.get("histogram") or {}
    ref, cur = hist.get("reference") or [], hist.get("current") or []
    if not ref or not cur or not sum(ref) or not sum(cur):
        return None
    ref_share = [100 * v / sum(ref) for v in ref]
    cur_share = [100 * v / sum(cur) for v in cur]
    if hist.get("categories"):
        x = hist["categories"]
    else:
        edges = hist.get("edges") or []
        x = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=False)]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=x, y=ref_share, name="reference", opacity=0.6))
    fig.add_trace(go.Bar(x=x, y=cur_share, name="current", opacity=0.6))
    verdict = "drift" if feature.get("drift") else "no drift"
    fig.update_layout(
        title=f"{feature['name']}: {verdict} (p adj. {feature.get('p_adjusted') or 0:.3g}, PSI {feature.get('psi') or 0:.3g})",
        barmode="overlay" if not hist.get("categories") else "group",
        yaxis_title="% of rows",
        xaxis_title=feature["name"],
        **LAYOUT,
    )
    return fig


def drift_figures(result: dict[str, Any]) -> list[Figure]:
    features = [f for f in ranked(result) if not f.get("error")]
    if not features:
        return []
    colours = ["#d62728" if f.get("drift") else "#1f77b4" for f in features]
    bars = go.Figure(go.Bar(x=[f["name"] for f in features], y=[f.get("psi") for f in features], marker_color=colours))
    bars.add_hline(y=0.25, line_dash="dot", annotation_text="PSI 0.25 (large shift)")
    bars.update_layout(
        title="Columns ranked by population stability index (red: drift at the corrected p-value)",
        yaxis_title="PSI",
        **LAYOUT,
    )
    figures: list[Figure] = [("Columns by effect size", bars)]
    prediction = result.get("prediction")
    if prediction and _distribution(prediction) is not None:
        figures.append(("Predicted classes", _distribution(prediction)))
    for feature in features[:MAX_DISTRIBUTIONS]:
        fig = _distribution(feature)
        if fig is not None:
            figures.append((f"Distribution of {feature['name']}", fig))
    return figures
