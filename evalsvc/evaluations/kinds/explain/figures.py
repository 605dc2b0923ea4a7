"""The explanation's figures: global importance, beeswarm, a waterfall for the first row, cohorts."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from ..base import LAYOUT, Figure
from .tables import importance_rows

TOP = 15
#: Explained images drawn with their heatmap overlay, at most.
OVERLAYS = 6


def image_overlays(result: dict[str, Any]) -> list[Figure]:
    """Per explained image: its thumbnail with the attribution heatmap over it (red raises the output, blue lowers it)."""
    figures: list[Figure] = []
    for row in (result.get("explained") or [])[:OVERLAYS]:
        image = row.get("image") or {}
        heat = np.asarray(image.get("heat") or [], dtype=float)
        if not heat.size:
            continue
        scale = float(np.abs(heat).max()) or 1.0
        fig = go.Figure(go.Image(z=image["thumb"], name="image"))
        fig.add_trace(
            go.Heatmap(
                z=heat, zmin=-scale, zmax=scale, colorscale="RdBu_r", opacity=0.5, name="attribution",
                colorbar={"title": "attribution"},
            )
        )  # fmt: skip
        fig.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False)
        fig.update_xaxes(showticklabels=False)
        fig.update_layout(
            title=f"Image {row['row']} ({row.get('name')}): {row.get('target')} explained, label {row.get('label')}, "
            + (
                f"{image['superpixels']} superpixels"
                if image.get("superpixels")
                else f"patches of {image.get('patch')} px"
            ),
            **LAYOUT,
        )
        figures.append((f"Image {row['row']}", fig))
    return figures


#: Tokens per line of a highlighted text.
LINE_TOKENS = 10


def text_highlights(result: dict[str, Any]) -> list[Figure]:
    """Per explained text: its tokens in reading order, each shaded by its attribution (red raises the output)."""
    figures: list[Figure] = []
    for row in (result.get("explained") or [])[:OVERLAYS]:
        tokens, values = list(row.get("features") or []), [float(v) for v in row.get("values") or []]
        if not tokens:
            continue
        lines = -(-len(tokens) // LINE_TOKENS)
        pad = lines * LINE_TOKENS - len(tokens)
        z = np.array(values + [np.nan] * pad).reshape(lines, LINE_TOKENS)
        text = np.array(tokens + [""] * pad, dtype=object).reshape(lines, LINE_TOKENS)
        hover = np.array(
            [f"{t}: {v:+.4g}" for t, v in zip(tokens, values, strict=True)] + [""] * pad, dtype=object
        ).reshape(lines, LINE_TOKENS)
        scale = float(np.nanmax(np.abs(z))) or 1.0
        fig = go.Figure(
            go.Heatmap(
                z=z, text=text, texttemplate="%{text}", hovertext=hover, hoverinfo="text", zmin=-scale, zmax=scale,
                colorscale="RdBu_r", xgap=2, ygap=2, colorbar={"title": "attribution"}, name="tokens",
            )
        )  # fmt: skip
        fig.update_yaxes(autorange="reversed", showticklabels=False)
        fig.update_xaxes(showticklabels=False)
        fig.update_layout(
            title=f"Row {row['row']}: {row.get('target')} explained, label {row.get('label')}",
            **{**LAYOUT, "height": min(420, 120 + 40 * lines)},
        )
        figures.append((f"Text {row['row']}", fig))
    return figures


def explain_figures(result: dict[str, Any]) -> list[Figure]:
    figures: list[Figure] = []
    features = result.get("features") or []
    ranked = importance_rows(result)[:TOP]
    if ranked:
        bars = go.Figure(
            go.Bar(
                x=[r["mean_abs_attribution"] for r in ranked][::-1],
                y=[r["feature"] for r in ranked][::-1],
                orientation="h",
            )
        )
        bars.update_layout(title="Global importance (mean |attribution|)", xaxis_title="mean |attribution|", **LAYOUT)
        figures.append(("Global importance", bars))
        values = np.asarray((result.get("global") or {}).get("values") or [])
        xs = np.asarray((result.get("global") or {}).get("feature_values") or [])
        if values.size:
            swarm = go.Figure()
            for r in ranked[::-1]:
                j = features.index(r["feature"])
                col = xs[:, j] if xs.size else np.zeros(len(values))
                span = np.ptp(col) or 1.0
                swarm.add_trace(
                    go.Scatter(
                        x=values[:, j], y=[r["feature"]] * len(values), mode="markers", showlegend=False,
                        marker={"color": (col - col.min()) / span, "colorscale": "RdBu_r", "size": 6, "cmin": 0, "cmax": 1},
                        hovertext=[f"value {v:g}" for v in col],
                    )
                )  # fmt: skip
            swarm.update_layout(
                title="Attribution per row (colour: feature value, low blue to high red)",
                xaxis_title="attribution",
                **LAYOUT,
            )
            figures.append(("Beeswarm", swarm))
    rows = result.get("explained") or []
    if result.get("modality") == "image":
        return figures[:1] + image_overlays(result)
    if result.get("modality") == "text":
        return figures[:1] + text_highlights(result)
    if rows:
        first = rows[0]
        order = np.argsort(-np.abs(first["values"]))[:TOP]
        base = first.get("base_value")
        measures = (["absolute"] if base is not None else []) + ["relative"] * len(order) + ["total"]
        labels = (["E[f(x)]"] if base is not None else []) + [features[i] for i in order] + ["f(x)"]
        ys = ([base] if base is not None else []) + [first["values"][i] for i in order] + [first.get("output")]
        water = go.Figure(go.Waterfall(orientation="v", measure=measures, x=labels, y=ys))
        water.update_layout(title=f"Row {first['row']}: what moved the output for {first.get('target')}", **LAYOUT)
        figures.append(("Waterfall", water))
    groups = (result.get("cohorts") or {}).get("groups") or {}
    if groups:
        top = [r["feature"] for r in ranked]
        cohort = go.Figure()
        for key, g in groups.items():
            imp = dict(zip(features, g["importance"], strict=False))
            cohort.add_trace(go.Bar(name=f"{key} ({g['rows']} rows)", x=top, y=[imp.get(f) for f in top]))
        cohort.update_layout(title=f"Importance by {result['cohorts']['by']}", barmode="group", **LAYOUT)
        figures.append(("Cohorts", cohort))
    return figures
