"""The latency profile's figures: percentiles, throughput, the batching trade-off, the CDF, the sweep, cold start."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from ..base import LAYOUT, Figure
from .tables import cell_label


def _ok_cells(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in result.get("cells", []) if c.get("status") == "ok" and (c.get("model") or {}).get("latency")]


def profile_figures(result: dict[str, Any]) -> list[Figure]:
    cells = _ok_cells(result)
    if not cells:
        return []
    labels = [cell_label(c["key"]) for c in cells]
    figures: list[Figure] = []

    bars = go.Figure()
    for p in ("p50", "p90", "p95", "p99"):
        bars.add_trace(go.Bar(x=labels, y=[c["model"]["latency"][f"{p}_ms"] for c in cells], name=p))
    bars.update_layout(
        title="Latency percentiles per configuration", yaxis_title="ms per batch", barmode="group", **LAYOUT
    )
    figures.append(("Latency percentiles", bars))

    series: dict[str, list[dict[str, Any]]] = {}
    for c in cells:
        k = c["key"]
        name = f"{k['backend']}/{k['device']}/{k['precision']}" + (f" t{k['threads']}" if k.get("threads") else "")
        series.setdefault(name, []).append(c)
    throughput = go.Figure()
    tradeoff = go.Figure()
    for name, group in series.items():
        group = sorted(group, key=lambda c: c["key"]["batch_size"])
        batch = [c["key"]["batch_size"] for c in group]
        rows_s = [c["model"]["latency"]["throughput_rows_s"] for c in group]
        p99 = [c["model"]["latency"]["p99_ms"] for c in group]
        throughput.add_trace(go.Scatter(x=batch, y=rows_s, mode="lines+markers", name=name))
        tradeoff.add_trace(
            go.Scatter(x=rows_s, y=p99, mode="lines+markers+text", text=[f"b{b}" for b in batch],
                       textposition="top center", name=name)
        )  # fmt: skip
    throughput.update_layout(title="Throughput versus batch size", xaxis_title="batch size", xaxis_type="log",
                             yaxis_title="rows/s", **LAYOUT)  # fmt: skip
    tradeoff.update_layout(title="The batching trade-off: p99 latency versus throughput", xaxis_title="rows/s",
                           yaxis_title="p99 ms per batch", **LAYOUT)  # fmt: skip
    figures += [("Throughput versus batch size", throughput), ("Latency versus throughput", tradeoff)]

    cdf = go.Figure()
    for label, c in zip(labels, cells, strict=True):
        samples = sorted(c["model"].get("samples_ns") or [])
        if samples:
            n = len(samples)
            step = max(1, n // 400)  # a few hundred points draw the same curve
            xs = [s / 1e6 for s in samples[::step]]
            ys = [(i * step + 1) / n for i in range(len(xs))]
            cdf.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=label))
    if cdf.data:
        cdf.update_layout(title="Latency distribution (CDF of kept samples)", xaxis_title="ms per batch",
                          xaxis_type="log", yaxis_title="fraction of calls", **LAYOUT)  # fmt: skip
        figures.append(("Latency distribution", cdf))

    figures += concurrency_figures(cells, labels)

    cold = go.Figure()
    cold.add_trace(go.Bar(x=labels, y=[1000 * c["cold_start"]["load_s"] for c in cells], name="model load"))
    cold.add_trace(go.Bar(x=labels, y=[c["cold_start"]["first_inference_ms"] for c in cells], name="first inference"))
    cold.update_layout(title="Cold start", yaxis_title="ms", barmode="stack", **LAYOUT)
    figures.append(("Cold start", cold))
    return figures


def concurrency_figures(cells: list[dict[str, Any]], labels: list[str]) -> list[Figure]:
    """Against requests in flight, per cell swept: p50/p99 latency, and rows/s.

    Two figures of one axis each, so that reports draw them too. A star on
    the latency figure marks the level where the median latency starts to
    climb, as the sweep recorded it.
    """
    latency = go.Figure()
    throughput = go.Figure()
    for label, c in zip(labels, cells, strict=True):
        sweep = c.get("concurrency") or {}
        levels = sweep.get("levels") or []
        if not levels:
            continue
        n = [level["concurrency"] for level in levels]
        p50 = [level["latency"]["p50_ms"] for level in levels]
        latency.add_trace(go.Scatter(x=n, y=p50, mode="lines+markers", name=f"{label} p50"))
        latency.add_trace(
            go.Scatter(x=n, y=[level["latency"]["p99_ms"] for level in levels], mode="lines+markers",
                       name=f"{label} p99", line={"dash": "dot"})
        )  # fmt: skip
        throughput.add_trace(
            go.Scatter(x=n, y=[level["latency"]["throughput_rows_s"] for level in levels], mode="lines+markers",
                       name=label)
        )  # fmt: skip
        climbs = sweep.get("latency_climbs_at")
        if climbs in n:
            latency.add_trace(
                go.Scatter(x=[climbs], y=[p50[n.index(climbs)]], mode="markers+text",
                           marker={"symbol": "star", "size": 14}, text=[f"climbs at {climbs}"],
                           textposition="top center", name=f"{label} latency climbs")
            )  # fmt: skip
    if not latency.data:
        return []
    axis = {"title": "requests in flight", "type": "log", "dtick": 0.30102999566}  # ticks at powers of 2
    latency.update_layout(title="Latency with N requests in flight", xaxis=axis, yaxis_title="ms per batch",
                          **LAYOUT)  # fmt: skip
    throughput.update_layout(title="Throughput with N requests in flight", xaxis=axis, yaxis_title="rows/s",
                             yaxis_rangemode="tozero", **LAYOUT)  # fmt: skip
    return [("Concurrency: latency", latency), ("Concurrency: throughput", throughput)]
