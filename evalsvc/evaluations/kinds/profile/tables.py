"""The latency profile's tables, computed once from the stored result for the run page, the CSV and the report."""

from __future__ import annotations

from typing import Any


def cell_label(key: dict[str, Any]) -> str:
    """A profile cell as people name it: "openvino/cpu/fp32 b8 t2"."""
    threads = key.get("threads")
    return f"{key['backend']}/{key['device']}/{key['precision']} b{key['batch_size']}" + (
        f" t{threads}" if threads else ""
    )


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
    """One flat row per cell: the run page's table, the CSV download and the report's latency table.

    The latency is the model's alone where it was timed so, else preprocessing and model together
    (``timed`` says which).
    """
    rows = []
    for c in result.get("cells", []):
        key = c.get("key", {})
        measured = c.get("model") or c.get("with_preprocessing") or {}
        latency = measured.get("latency") or {}
        stability = measured.get("stability") or {}
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
                "timed": "model" if c.get("model") else ("with_preprocessing" if c.get("with_preprocessing") else None),
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


#: How the regression check decides, for the report and the run page.
REGRESSION_METHOD = (
    "Each side's latencies, in measurement order, are cut into 5 to 20 contiguous blocks of at least 50 calls "
    "and 20 correlation times (from the lag-1 autocorrelation of their ranks), so successive, correlated calls "
    "do not count as independent evidence. p is the exact one-sided Mann–Whitney U test on the block medians "
    "(α = {alpha}); the ratio is that of the medians of all calls, its 95 % interval ratio × exp(± t·se) with "
    "se from the variance of the log block medians (batch means, Welch's degrees of freedom); Cliff's δ is "
    "over all pairs of calls. A configuration is flagged when it is significantly slower and its ratio of "
    "medians exceeds 1 + {threshold}."
)


def concurrency_sweeps(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per cell that ran a concurrency sweep: its summary and one row per level in flight.

    The run page's sweep tables and the report's are both these rows, each side formatting the values.
    """
    sweeps = []
    for c in result.get("cells") or []:
        sweep = c.get("concurrency") or {}
        levels = sweep.get("levels") or []
        if not levels:
            continue
        sweeps.append(
            {
                "label": cell_label(c["key"]),
                "latency_climbs_at": sweep.get("latency_climbs_at"),
                "climb_threshold": float(sweep.get("climb_threshold") or 0),
                "best_throughput_at": sweep.get("best_throughput_at"),
                "max_within_latency_objective": sweep.get("max_within_latency_objective"),
                "top_concurrency": levels[-1]["concurrency"],
                "error": sweep.get("error"),
                "rows": [
                    {
                        "concurrency": level["concurrency"],
                        "p50_ms": (level.get("latency") or {}).get("p50_ms"),
                        "p99_ms": (level.get("latency") or {}).get("p99_ms"),
                        "throughput_rows_s": (level.get("latency") or {}).get("throughput_rows_s"),
                        "stable": bool((level.get("stability") or {}).get("stable")),
                        "within_latency_objective": level.get("within_latency_objective"),
                    }
                    for level in levels
                ],
            }
        )
    return sweeps


def regression_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per configuration of the regression check, for the run page and the report.

    A configuration that could not be compared has ``compared`` false and says why in ``reason``.
    """
    rows = []
    for cell in (result.get("regression") or {}).get("cells") or []:
        comparison = cell.get("comparison") or {}
        rows.append(
            {
                "label": cell.get("label"),
                "compared": bool(comparison),
                "reason": cell.get("reason") or cell.get("status"),
                **{
                    k: comparison.get(k)
                    for k in (
                        "baseline_p50_ms",
                        "candidate_p50_ms",
                        "median_ratio",
                        "ratio_ci_low",
                        "ratio_ci_high",
                        "p_value",
                        "cliffs_delta",
                    )
                },  # fmt: skip
                "verdict": comparison.get("verdict", ""),
            }
        )
    return rows


def page_context(result: dict[str, Any]) -> dict[str, Any]:
    regression = result.get("regression") or {}
    method = REGRESSION_METHOD.format(alpha=regression.get("alpha"), threshold=regression.get("threshold"))
    return {
        "profile_rows": profile_rows(result),
        "concurrency_sweeps": concurrency_sweeps(result),
        "regression_rows": regression_rows(result),
        "regression_method": method,
    }
