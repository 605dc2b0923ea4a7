"""The latency profile's section: how it was measured, and its numbers in tables that fit the page.

Every figure is read from the stored result (the cells' summaries, the
sweep, the regression check); nothing is recomputed here.
"""

from __future__ import annotations

from typing import Any

from ..base import JobContext, Section, Table
from .tables import REGRESSION_METHOD, cell_label, concurrency_sweeps, profile_rows, regression_rows


def _whole(value: float | None) -> int | None:
    """Rows/s and MiB to the unit: the decimals are noise at that size."""
    return None if value is None else round(value)


def _method(ctx: JobContext) -> str:
    result, params = ctx.result, ctx.params
    grid = result.get("grid") or {}
    rule = grid.get("rule") or {}
    source = params.get("input_source") or "synthetic"
    inputs = (
        f"real rows of {ctx.dataset}"
        if source == "dataset" and ctx.dataset
        else "synthetic tensors of the model's signature"
    )
    where = {"out": "the model alone", "in": "preprocessing and model together", "both": "the model alone, then "
             "preprocessing and model together"}.get(grid.get("preprocessing", "out"), "the model alone")  # fmt: skip
    text = (
        f"Each configuration (backend × device × precision × batch size × intra-op threads) was loaded cold "
        f"(load time and first inference recorded), warmed up for at least {grid.get('warmup_calls', '?')} calls "
        f"and {grid.get('warmup_s', '?')} s, then timed call by call on {inputs}, timing {where}. Measurement "
        f"ran in windows of at least {rule.get('min_calls', '?')} calls and {rule.get('min_window_s', '?')} s until "
        f"the last {rule.get('windows', '?')} windows agreed within {100 * float(rule.get('tolerance', 0)):.0f} % "
        f"on p50 and throughput (perf_analyzer's rule), or until {rule.get('max_windows', '?')} windows or "
        f"{rule.get('max_seconds', '?')} s, after which the configuration is marked unstable. Percentiles use "
        f"the {grid.get('percentile_method', 'linear')} method over every call of the last "
        f"{rule.get('windows', '?')} windows; latencies are per call, that is per batch."
    )
    if grid.get("concurrency"):
        text += (
            f" The concurrency sweep ran {', '.join(str(n) for n in grid['concurrency'])} requests in flight, each "
            "served by its own loaded copy of the model."
        )
    return text


def _cells_table(result: dict[str, Any]) -> Table:
    rows = []
    for r in profile_rows(result):
        if r["status"] != "ok":
            rows.append([cell_label(r), *[None] * 7, r["status"]])  # the reason is in the notes
            continue
        rows.append(
            [cell_label(r), r["count"], r["p50_ms"], r["p90_ms"], r["p99_ms"], r["max_ms"],
             _whole(r["throughput_rows_s"]), "yes" if r["stable"] else "no", r["verdict"]]
        )  # fmt: skip
    return {
        "title": "Latency per configuration (ms per call)",
        "columns": ["Configuration", "Calls", "p50", "p90", "p99", "max", "rows/s", "Stable", "Verdict"],
        "rows": rows,
    }


def _start_table(cells: list[dict[str, Any]]) -> Table:
    rows = []
    for c in cells:
        if c.get("status") != "ok":
            continue
        cold, memory = c.get("cold_start") or {}, c.get("memory") or {}
        runtime = ((c.get("model") or {}).get("runtime_latency")) or {}
        peak = memory.get("peak_rss_bytes")
        rows.append(
            [
                cell_label(c["key"]),
                1000 * cold["load_s"] if cold.get("load_s") is not None else None,
                cold.get("first_inference_ms"),
                c.get("preprocessing_ms"),
                runtime.get("p50_ms"),
                _whole(peak / 2**20) if peak else None,
            ]
        )
    return {
        "title": "Cold start, preprocessing and memory",
        "columns": ["Configuration", "Load ms", "First call ms", "Preprocessing ms", "Runtime p50 ms", "Peak RSS MiB"],
        "rows": rows,
        "note": "Runtime p50 is the runtime's own timing of each call where it keeps one (OpenVINO), without the "
        "Python binding around it; preprocessing is the p50 difference with and without it, where both were timed.",
    }


def _concurrency_tables(result: dict[str, Any]) -> list[Table]:
    tables = []
    for sweep in concurrency_sweeps(result):
        climbs = sweep["latency_climbs_at"]
        threshold = 100 * sweep["climb_threshold"]
        note = (
            f"Median latency climbs more than {threshold:.0f} % above the lowest level from {climbs} in flight."
            if climbs
            else f"Median latency stays within {threshold:.0f} % of the lowest level."
        )
        if sweep["best_throughput_at"]:
            note += f" Most rows/s at {sweep['best_throughput_at']} in flight."
        if sweep["error"]:
            note += f" {sweep['error']}"
        tables.append(
            {
                "title": f"Concurrency: {sweep['label']}",
                "columns": ["In flight", "p50 ms", "p99 ms", "rows/s", "Stable", "Within objective"],
                "rows": [
                    [
                        r["concurrency"],
                        r["p50_ms"],
                        r["p99_ms"],
                        _whole(r["throughput_rows_s"]),
                        "yes" if r["stable"] else "no",
                        {True: "yes", False: "no"}.get(r["within_latency_objective"], "—"),
                    ]
                    for r in sweep["rows"]
                ],
                "note": note,
            }
        )
    return tables


def _regression_table(result: dict[str, Any]) -> Table:
    regression = result.get("regression") or {}
    rows = []
    for r in regression_rows(result):
        if not r["compared"]:
            rows.append([r["label"], *["—"] * 6, r["reason"]])
            continue
        rows.append(
            [
                r["label"],
                r["baseline_p50_ms"],
                r["candidate_p50_ms"],
                r["median_ratio"],
                f"{r['ratio_ci_low']:.3f}–{r['ratio_ci_high']:.3f}",
                r["p_value"],
                r["cliffs_delta"],
                r["verdict"].replace("_", " "),
            ]
        )
    return {
        "title": f"Regression check against job {str(regression.get('baseline_run', ''))[:8]}",
        "columns": [
            "Configuration",
            "Baseline p50",
            "This p50",
            "Ratio",
            "Ratio CI",
            "p (slower)",
            "Cliff's δ",
            "Verdict",
        ],  # fmt: skip
        "rows": rows,
        "note": REGRESSION_METHOD.format(alpha=regression.get("alpha"), threshold=regression.get("threshold")),
    }


def profile_section(ctx: JobContext) -> Section:
    result = ctx.result
    cells = result.get("cells") or []
    tables = [_cells_table(result)]
    if any(c.get("status") == "ok" for c in cells):
        tables.append(_start_table(cells))
    tables += _concurrency_tables(result)
    notes: list[str] = []
    if result.get("recommendation"):
        notes.append(f"Recommended: {result['recommendation'].get('reason')}.")
    elif result.get("recommendation_reason"):
        notes.append(f"No configuration recommended: {result['recommendation_reason']}.")
    objectives = result.get("objectives") or {}
    if objectives.get("latency") or objectives.get("throughput"):
        notes.append("Verdicts are against the job's objectives (see the parameters).")
    regression = result.get("regression")
    if regression:
        tables.append(_regression_table(result))
        flagged = regression.get("regressions") or []
        notes.append(("Slower beyond the threshold: " + ", ".join(flagged)) if flagged else "No configuration got "
                     "slower beyond the threshold.")  # fmt: skip
    host = result.get("host") or {}
    if host:
        libraries = ", ".join(f"{k} {v}" for k, v in sorted((host.get("libraries") or {}).items()))
        gpus = "; ".join(f"{g.get('name')} (driver {g.get('driver_version')})" for g in host.get("gpus") or [])
        notes.append(
            f"Host: {host.get('cpu_model')}, {host.get('cpu_logical')} logical CPUs, "
            f"{(host.get('memory_total_bytes') or 0) / 2**30:.1f} GiB memory; GPU: {gpus or host.get('gpu_reason')}; "
            f"load average {host.get('load_before')} before and {host.get('load_after')} after; {libraries}."
        )
    unstable = [cell_label(c["key"]) for c in cells if c.get("status") == "ok" and not
                (((c.get("model") or c.get("with_preprocessing") or {}).get("stability")) or {}).get("stable")]  # fmt: skip
    notes += [f"{cell_label(c['key'])} was not measured ({c.get('status')}): {c.get('error')}" for c in cells
              if c.get("status") != "ok"]  # fmt: skip
    if unstable:
        notes.append("Not stable within the caps, so quote with care: " + ", ".join(unstable) + ".")
    return Section(method=_method(ctx), tables=tables, notes=notes)
