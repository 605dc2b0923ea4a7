"""The quantization job's table, computed once from the stored result for the run page and the report."""

from __future__ import annotations

from typing import Any


def _quality(metrics: dict | None) -> float | None:
    """The headline quality of a variant: accuracy for a classifier, R² for a regressor."""
    if not metrics:
        return None
    return metrics.get("accuracy", metrics.get("r2"))


def variant_rows(result: dict) -> list[dict]:
    """Quantization result → one table row per variant, the parent first."""
    parent = result.get("parent") or {}
    rows = [{"variant": "parent", "size_bytes": parent.get("size_bytes"), "size_ratio": 1.0,
             "quality": _quality(parent.get("metrics")), "speedup": 1.0, "status": "ok",
             "timing": parent.get("timing") or {}}]  # fmt: skip
    for v in result.get("variants", []):
        agreement = (v.get("agreement") or [{}])[0]
        rows.append(
            {
                **v,
                "quality": _quality(v.get("metrics")),
                "label_agreement": agreement.get("label_agreement"),
                "max_abs": agreement.get("max_abs"),
                "timing": v.get("timing") or {},
            }
        )
    return rows


def timing_cells(timing: dict[str, Any]) -> list[Any]:
    """p50, p90, p99 and std in ms, and whether the windows agreed; blanks where it was not timed."""
    if timing.get("status") != "ok":
        return [None, None, None, None, None]
    return [timing["p50_ms"], timing["p90_ms"], timing["p99_ms"], timing["std_ms"], "yes" if timing["stable"] else "no"]


def page_context(result: dict[str, Any]) -> dict[str, Any]:
    from .section import calibration_text, row_indices

    calibration = result.get("calibration")
    return {
        "variant_rows": variant_rows(result),
        "calibration_text": calibration_text(calibration),
        "calibration_indices": row_indices((calibration or {}).get("indices") or []),
    }
