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

#: Headline metrics per task, in the order a reviewer reads them.
METRIC_LABELS = {
    "classification": [
        ("accuracy", "Accuracy"),
        ("precision", "Precision"),
        ("recall", "Recall"),
        ("f1", "F1"),
        ("roc_auc", "ROC AUC"),
    ],
    "regression": [("mae", "MAE"), ("rmse", "RMSE"), ("r2", "R²")],
}


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


def cell_label(key: dict[str, Any]) -> str:
    """A profile cell as people name it: "openvino/cpu/fp32 b8 t2"."""
    threads = key.get("threads")
    return f"{key['backend']}/{key['device']}/{key['precision']} b{key['batch_size']}" + (
        f" t{threads}" if threads else ""
    )


def _ok_cells(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in result.get("cells", []) if c.get("status") == "ok" and (c.get("model") or {}).get("latency")]


@builder("profile")
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
        title="Latency percentiles per configuration", yaxis_title="ms per batch", barmode="group", **_LAYOUT
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
                             yaxis_title="rows/s", **_LAYOUT)  # fmt: skip
    tradeoff.update_layout(title="The batching trade-off: p99 latency versus throughput", xaxis_title="rows/s",
                           yaxis_title="p99 ms per batch", **_LAYOUT)  # fmt: skip
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
                          xaxis_type="log", yaxis_title="fraction of calls", **_LAYOUT)  # fmt: skip
        figures.append(("Latency distribution", cdf))

    figures += concurrency_figures(cells, labels)

    cold = go.Figure()
    cold.add_trace(go.Bar(x=labels, y=[1000 * c["cold_start"]["load_s"] for c in cells], name="model load"))
    cold.add_trace(go.Bar(x=labels, y=[c["cold_start"]["first_inference_ms"] for c in cells], name="first inference"))
    cold.update_layout(title="Cold start", yaxis_title="ms", barmode="stack", **_LAYOUT)
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
                          **_LAYOUT)  # fmt: skip
    throughput.update_layout(title="Throughput with N requests in flight", xaxis=axis, yaxis_title="rows/s",
                             yaxis_rangemode="tozero", **_LAYOUT)  # fmt: skip
    return [("Concurrency: latency", latency), ("Concurrency: throughput", throughput)]


def verdict_word(verdict: dict[str, Any] | None) -> str | None:
    """One word for a cell's verdict: ``None`` without objectives, ``"n/a"`` where none applies to the cell."""
    states = [verdict.get(k) for k in ("latency", "throughput")] if verdict else []
    states = [s for s in states if s is not None]
    if not states:
        return None
    if "fail" in states:
        return "fail"
    if all(s == "not_applicable" for s in states):
        return "n/a"
    return "pass"


def profile_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per cell, for the CSV download and the table on the page."""
    rows = []
    for c in result.get("cells", []):
        key = c.get("key", {})
        latency = (c.get("model") or {}).get("latency") or {}
        stability = (c.get("model") or {}).get("stability") or {}
        verdict = c.get("verdict") or {}
        cold = c.get("cold_start") or {}
        memory = c.get("memory") or {}
        sweep = c.get("concurrency") or {}
        rows.append(
            {
                "backend": key.get("backend"),
                "device": key.get("device"),
                "precision": key.get("precision"),
                "batch_size": key.get("batch_size"),
                "threads": key.get("threads"),
                "status": c.get("status"),
                "error": c.get("error", ""),
                **{
                    k: latency.get(k)
                    for k in (
                        "count",
                        "mean_ms",
                        "std_ms",
                        "min_ms",
                        "p50_ms",
                        "p90_ms",
                        "p95_ms",
                        "p99_ms",
                        "max_ms",
                        "throughput_rows_s",
                        "throughput_batches_s",
                    )
                },  # fmt: skip
                "stable": stability.get("stable"),
                "load_s": cold.get("load_s"),
                "first_inference_ms": cold.get("first_inference_ms"),
                "peak_rss_bytes": memory.get("peak_rss_bytes"),
                "with_preprocessing_p50_ms": (((c.get("with_preprocessing") or {}).get("latency")) or {}).get("p50_ms"),
                "verdict": verdict_word(verdict),
                "concurrency_levels": ",".join(str(level["concurrency"]) for level in sweep.get("levels") or []),
                "latency_climbs_at": sweep.get("latency_climbs_at"),
                "best_throughput_at": sweep.get("best_throughput_at"),
                "max_concurrency_within_latency_objective": sweep.get("max_within_latency_objective"),
            }
        )
    return rows


def _quality(metrics: dict | None) -> float | None:
    """The headline quality of a variant: accuracy for a classifier, R² for a regressor."""
    if not metrics:
        return None
    return metrics.get("accuracy", metrics.get("r2"))


def variant_rows(result: dict) -> list[dict]:
    """Quantization result → one table row per variant, the parent first."""
    parent = result.get("parent") or {}
    rows = [{"variant": "parent", "size_bytes": parent.get("size_bytes"), "size_ratio": 1.0,
             "quality": _quality(parent.get("metrics")), "speedup": 1.0, "status": "ok"}]  # fmt: skip
    for v in result.get("variants", []):
        agreement = (v.get("agreement") or [{}])[0]
        rows.append(
            {
                **v,
                "quality": _quality(v.get("metrics")),
                "label_agreement": agreement.get("label_agreement"),
                "max_abs": agreement.get("max_abs"),
            }
        )
    return rows
