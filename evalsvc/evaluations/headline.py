"""A run's headline: one short line that says how it went, kept beside the run for lists.

Lists of runs show it without reading the stored result, which can weigh
hundreds of kilobytes (a latency profile's); it is worked out whenever the
result is written.
"""

from __future__ import annotations

from typing import Any

#: The stored column's width; a longer headline is cut.
HEADLINE_MAX = 200


def run_headline(result: dict[str, Any] | None) -> str:
    """One number that says how a finished run went, read from the shape of its stored result
    (metrics, compared candidates, variants made, measured configurations); empty when there is none."""
    return _headline(result if isinstance(result, dict) else None)[:HEADLINE_MAX]


def _headline(result: dict[str, Any] | None) -> str:
    result = result or {}
    found = result.get("metrics")
    metrics: dict[str, Any] = found if isinstance(found, dict) else {}
    for key, label in (("accuracy", "accuracy"), ("r2", "R²"), ("rmse", "RMSE")):
        if isinstance(metrics.get(key), (int, float)):
            return f"{label} {metrics[key]:.4f}"
    agreements = [
        o.get("label_agreement")
        for c in result.get("candidates") or []
        if isinstance(c, dict)
        for o in c.get("outputs") or []
        if isinstance(o.get("label_agreement"), (int, float))
    ]
    if agreements:
        return f"label agreement ≥ {100 * min(agreements):.2f} %"
    made = [v for v in result.get("variants") or [] if isinstance(v, dict) and v.get("status") == "ok"]
    if made:
        speedups = [v["speedup"] for v in made if isinstance(v.get("speedup"), (int, float))]
        return f"{len(made)} variant{'s' if len(made) > 1 else ''}" + (
            f", up to {max(speedups):.2f}× faster" if speedups else ""
        )
    p50 = [
        c["model"]["latency"]["p50_ms"]
        for c in result.get("cells") or []
        if isinstance(c, dict)
        and c.get("status") == "ok"
        and ((c.get("model") or {}).get("latency") or {}).get("p50_ms")
    ]
    if p50:
        return f"fastest p50 {min(p50):.3g} ms"
    return _drift_headline(result) or _explain_headline(result)


def _drift_headline(result: dict[str, Any]) -> str:
    features = result.get("features")
    if "drift" not in result or not isinstance(features, list):
        return ""
    drifted = [f for f in result.get("drifted_features") or [] if isinstance(f, str)]
    if drifted:
        return (
            f"drift in {len(drifted)} of {len(features)} columns: "
            + ", ".join(drifted[:3])
            + (", …" if len(drifted) > 3 else "")
        )
    return "drift detected (multivariate)" if result.get("drift") else f"no drift in {len(features)} columns"


def _explain_headline(result: dict[str, Any]) -> str:
    names = result.get("features")
    importance = (result.get("global") or {}).get("importance") if isinstance(result.get("global"), dict) else None
    if not isinstance(names, list) or not isinstance(importance, list) or len(importance) != len(names) or not names:
        return ""
    top = max(range(len(names)), key=lambda i: abs(importance[i]) if isinstance(importance[i], (int, float)) else -1)
    return f"top feature: {names[top]}"
