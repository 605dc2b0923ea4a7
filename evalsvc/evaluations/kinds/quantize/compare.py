"""Quantization jobs side by side: per variant, the speed-up, the size and the scores on labelled rows."""

from __future__ import annotations

from typing import Any

from ..base import CompareRun, Comparison, MetricRow

#: Per variant: (key in the variant's entry, label, which way is better).
_VARIANT = [("speedup", "speed-up over the parent", "higher"), ("size_ratio", "size / parent's", "lower")]
_SCORES = [
    ("accuracy", "accuracy", "higher"),
    ("f1", "F1", "higher"),
    ("rmse", "RMSE", "lower"),
    ("r2", "R²", "higher"),
]


def _variants(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for v in result.get("variants") or []:
        if v.get("status") != "ok":
            continue
        entry = {key: v.get(key) for key, _, _ in _VARIANT}
        metrics = v.get("metrics") or {}
        entry.update({key: metrics.get(key) for key, _, _ in _SCORES})
        agreements = [
            a["label_agreement"] for a in v.get("agreement") or [] if isinstance(a.get("label_agreement"), int | float)
        ]
        entry["label_agreement"] = min(agreements) if agreements else None
        found[str(v.get("variant"))] = entry
    return found


def quantize_compare(runs: list[CompareRun]) -> Comparison:
    found = [_variants(run.result) for run in runs]
    names: list[str] = []
    for variants in found:
        names += [name for name in variants if name not in names]
    rows: list[MetricRow] = []
    for name in names:
        for key, label, better in [*_VARIANT, ("label_agreement", "label agreement", "higher"), *_SCORES]:
            values = [(v.get(name) or {}).get(key) for v in found]
            if any(isinstance(x, int | float) for x in values):
                rows.append(MetricRow(f"{key} {name}", f"{name}: {label}", values, better))
    notes = ["A variant that failed in a run (or was not asked for) is left empty there."] if names else []
    return Comparison(metrics=rows, notes=notes)
