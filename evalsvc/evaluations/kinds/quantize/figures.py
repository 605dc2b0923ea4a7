"""The quantization job's figures: size, time per row and quality of each variant beside the parent."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from ..base import LAYOUT, Figure


def quantize_figures(result: dict[str, Any]) -> list[Figure]:
    ok = [v for v in result.get("variants", []) if v.get("status") == "ok"]
    if not ok:
        return []
    names = ["parent"] + [v["variant"] for v in ok]
    sizes = [result["parent"]["size_bytes"]] + [v["size_bytes"] for v in ok]
    size = go.Figure(go.Bar(x=names, y=[s / 1024 for s in sizes], text=[f"{s / 1024:.1f}" for s in sizes]))
    size.update_layout(title="Model size", yaxis_title="KiB", **LAYOUT)
    figures: list[Figure] = [("Size", size)]
    timings = [result["parent"].get("timing") or {}] + [v.get("timing") or {} for v in ok]
    if all(t.get("status") == "ok" for t in timings):
        # Warm medians per row, from the profiler's measurement; the table gives p90, p99 and std.
        per_row = [t["us_per_row"] for t in timings]
        latency = go.Figure(go.Bar(x=names, y=per_row, text=[f"{u:.3g}" for u in per_row]))
        batch = timings[0].get("batch_size")
        latency.update_layout(
            title=f"Median time per row, warm (ONNX Runtime, CPU, batch {batch})", yaxis_title="µs per row", **LAYOUT
        )
        figures.append(("Time per row", latency))
    metric = next((m for m in ("accuracy", "r2") if (result["parent"].get("metrics") or {}).get(m) is not None), None)
    if metric:
        values = [result["parent"]["metrics"][metric]] + [(v.get("metrics") or {}).get(metric) for v in ok]
        quality = go.Figure(go.Bar(x=names, y=values, text=[f"{v:.4f}" if v is not None else "" for v in values]))
        quality.update_layout(title=f"{metric} on the labelled rows", yaxis_title=metric, **LAYOUT)
        figures.append(("Quality", quality))
    return figures
