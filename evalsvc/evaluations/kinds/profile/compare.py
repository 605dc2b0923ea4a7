"""Latency profiles side by side: median latency and throughput per configuration, one bar series per run."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from ..base import LAYOUT, CompareRun, Comparison, MetricRow
from .tables import cell_label


def _cells(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        cell_label(c["key"]): c["model"]["latency"]
        for c in result.get("cells") or []
        if c.get("status") == "ok" and (c.get("model") or {}).get("latency")
    }


def profile_compare(runs: list[CompareRun]) -> Comparison:
    cells = [_cells(run.result) for run in runs]
    labels: list[str] = []
    for found in cells:
        labels += [label for label in found if label not in labels]
    rows: list[MetricRow] = []
    for label in labels:
        rows.append(
            MetricRow(
                f"p50_ms {label}",
                f"{label}: p50 ms per batch",
                [(found.get(label) or {}).get("p50_ms") for found in cells],
                "lower",
            )
        )
        rows.append(
            MetricRow(
                f"throughput {label}",
                f"{label}: rows/s",
                [(found.get(label) or {}).get("throughput_rows_s") for found in cells],
                "higher",
            )
        )
    latency, throughput = go.Figure(), go.Figure()
    for run, found in zip(runs, cells, strict=True):
        latency.add_trace(go.Bar(x=labels, y=[(found.get(x) or {}).get("p50_ms") for x in labels], name=run.name))
        throughput.add_trace(
            go.Bar(x=labels, y=[(found.get(x) or {}).get("throughput_rows_s") for x in labels], name=run.name)
        )
    latency.update_layout(
        title="Median latency per configuration", yaxis_title="p50 ms per batch", barmode="group", **LAYOUT
    )
    throughput.update_layout(title="Throughput per configuration", yaxis_title="rows/s", barmode="group", **LAYOUT)
    notes = []
    if any(label not in found for found in cells for label in labels):
        notes.append("A configuration a run did not measure (or that failed there) is left empty.")
    figures = [("Latency per configuration", latency), ("Throughput per configuration", throughput)] if labels else []
    return Comparison(metrics=rows, figures=figures, notes=notes)
