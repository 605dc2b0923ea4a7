"""Parity jobs side by side: per candidate, the largest output difference and the lowest label agreement."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from ..base import LAYOUT, CompareRun, Comparison, MetricRow
from .figures import _target_label


def _candidates(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for c in result.get("candidates") or []:
        if c.get("status") != "ok":
            continue
        outputs = c.get("outputs") or []
        diffs = [o["max_abs"] for o in outputs if isinstance(o.get("max_abs"), int | float)]
        agreements = [o["label_agreement"] for o in outputs if isinstance(o.get("label_agreement"), int | float)]
        found[_target_label(c.get("target") or {})] = {
            "max_abs": max(diffs) if diffs else None,
            "label_agreement": min(agreements) if agreements else None,
        }
    return found


def parity_compare(runs: list[CompareRun]) -> Comparison:
    found = [_candidates(run.result) for run in runs]
    labels: list[str] = []
    for candidates in found:
        labels += [label for label in candidates if label not in labels]
    rows: list[MetricRow] = []
    for label in labels:
        rows.append(
            MetricRow(
                f"max_abs {label}",
                f"{label}: largest |difference|",
                [(c.get(label) or {}).get("max_abs") for c in found],
                "lower",
            )
        )
        agreement = [(c.get(label) or {}).get("label_agreement") for c in found]
        if any(v is not None for v in agreement):
            rows.append(MetricRow(f"label_agreement {label}", f"{label}: label agreement", agreement, "higher"))
    rows.append(MetricRow("rows", "Rows compared", [run.result.get("rows") for run in runs], None))
    figure = go.Figure()
    for run, candidates in zip(runs, found, strict=True):
        figure.add_trace(
            go.Bar(
                x=labels, y=[max((candidates.get(x) or {}).get("max_abs") or 0.0, 1e-12) for x in labels], name=run.name
            )
        )
    figure.update_layout(
        title="Largest absolute output difference per candidate",
        yaxis_title="max |candidate − reference|",
        yaxis_type="log",
        barmode="group",
        **LAYOUT,
    )
    notes = ["A candidate that failed or was unavailable in a run is left empty there."] if labels else []
    return Comparison(
        metrics=rows, figures=[("Output difference per candidate", figure)] if labels else [], notes=notes
    )
