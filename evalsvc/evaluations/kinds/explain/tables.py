"""The explanation's rows, read from the stored result: global importance, per-row attributions, trust scores."""

from __future__ import annotations

from typing import Any

from ..base import Rows


def importance_rows(result: dict[str, Any]) -> Rows:
    features = result.get("features") or []
    importance = (result.get("global") or {}).get("importance") or []
    rows = [{"feature": f, "mean_abs_attribution": v} for f, v in zip(features, importance, strict=False)]
    return sorted(rows, key=lambda r: -r["mean_abs_attribution"])


def attribution_rows(result: dict[str, Any]) -> Rows:
    """One row per explained row and feature: the CSV download."""
    features = result.get("features") or []
    out = []
    for row in result.get("explained") or []:
        for f, v, x in zip(
            row.get("features") or features, row.get("values") or [], row.get("feature_values") or [], strict=False
        ):
            out.append(
                {
                    "row": row["row"],
                    "target": row.get("target"),
                    "predicted": row.get("predicted"),
                    "label": row.get("label"),
                    "feature": f,
                    "value": x,
                    "attribution": v,
                    "output": row.get("output"),
                    "base_value": row.get("base_value"),
                }
            )
    return out


def trust_rows(result: dict[str, Any]) -> Rows:
    from workers.engine.explain.trust import DEFAULT_THRESHOLDS

    scores = (result.get("trust") or {}).get("scores") or {}
    rows = []
    for name, (kind, limit) in DEFAULT_THRESHOLDS.items():
        if name not in scores:
            continue
        value = scores[name]
        ok = value is not None and (value <= limit if kind == "max" else value >= limit)
        rows.append(
            {
                "score": name.replace("_", " "),
                "value": value,
                "threshold": f"{'≤' if kind == 'max' else '≥'} {limit:g}",
                "status": "pass" if ok else "FLAG",
            }
        )
    return rows


def budget_rows(result: dict[str, Any]) -> Rows:
    budget = result.get("budget") or {}
    return [{"item": k.replace("_", " "), "value": v} for k, v in budget.items() if not isinstance(v, dict)]
