"""Runs side by side: a metrics table (one column per run, differences from the first marked), the runs'
parameters, and overlaid figures. What is compared comes from the kind (its ``compare`` hook) or, for a kind
without one, the generic comparison of every numeric metric; nothing here knows a kind by name."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from evalsvc.core.exceptions import ApplicationError
from evalsvc.core.users import signed_in_user
from evalsvc.evaluations.kinds import get_kind
from evalsvc.evaluations.kinds.base import CompareRun, Comparison, MetricRow
from evalsvc.evaluations.kinds.generic import generic_compare
from evalsvc.evaluations.models import EvaluationRun
from evalsvc.evaluations.selectors import MAX_COMPARED_RUNS, runs_for_comparison

from .plotlytext import figure_for_browser

#: Two values closer than this (relative) are the same number printed twice.
_SAME = 1e-12


def compared_ids(values: list[str]) -> list[str]:
    """``ids`` given repeated (``?ids=a&ids=b``, the runs list's checkboxes) or comma-separated (``?ids=a,b``)."""
    return [part for value in values for part in value.split(",") if part.strip()]


def run_name(run: EvaluationRun) -> str:
    """How a run is named in columns and legends: its model version and the start of its id."""
    return f"{run.model_version} · {str(run.pk)[:8]}"


def _delta(value: Any, base: Any) -> float | None:
    numeric = (int, float)
    if isinstance(value, bool) or isinstance(base, bool):
        return None
    if not isinstance(value, numeric) or not isinstance(base, numeric):
        return None
    return float(value) - float(base)


def _state(row: MetricRow, delta: float | None, value: Any, base: Any) -> str:
    """``same``, ``better``, ``worse`` or ``changed`` (no direction is better, or a value is missing)."""
    if delta is None:
        return "same" if value == base else "changed"
    if abs(delta) <= _SAME * max(1.0, abs(float(base))):
        return "same"
    if row.better is None:
        return "changed"
    return "better" if (delta > 0) == (row.better == "higher") else "worse"


def _metric_rows(comparison: Comparison) -> list[dict[str, Any]]:
    rows = []
    for row in comparison.metrics:
        base = row.values[0] if row.values else None
        cells = []
        for i, value in enumerate(row.values):
            delta = _delta(value, base)
            cells.append(
                {
                    "value": value,
                    "delta": None if i == 0 else delta,
                    "state": "baseline" if i == 0 else _state(row, delta, value, base),
                }
            )
        rows.append({"key": row.key, "label": row.label, "better": row.better, "cells": cells})
    return rows


def _text(value: Any) -> str:
    if value is None:
        return "—"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _param_rows(runs: list[EvaluationRun]) -> list[dict[str, Any]]:
    keys = sorted({key for run in runs for key in (run.params or {})})
    rows = []
    for key in keys:
        values = [_text((run.params or {}).get(key)) for run in runs]
        rows.append({"name": key, "values": values, "differs": len(set(values)) > 1})
    return rows


def comparison_of(runs: list[EvaluationRun]) -> dict[str, Any]:
    """Everything the page and the API show of ``runs`` (checked by ``runs_for_comparison``)."""
    kind = get_kind(runs[0].kind)
    compare = kind.compare or generic_compare
    comparison = compare(
        [CompareRun(name=run_name(run), params=run.params or {}, result=run.result or {}) for run in runs]
    )
    # The runs list's one number per run, whatever the kind, leads the table.
    headlines = [run.headline for run in runs]
    if any(headlines):
        comparison.metrics.insert(0, MetricRow("headline", "Headline", headlines, None))
    return {
        "kind": kind,
        "runs": runs,
        "names": [run_name(run) for run in runs],
        "metrics": _metric_rows(comparison),
        "params": _param_rows(runs),
        "figures": comparison.figures,
        "notes": comparison.notes,
    }


@login_required
def run_compare(request: HttpRequest) -> HttpResponse:
    ids = compared_ids(request.GET.getlist("ids"))
    try:
        runs = runs_for_comparison(user=signed_in_user(request), ids=ids)
    except ApplicationError as exc:
        # The message says what to choose instead; the list is one click away.
        return render(
            request,
            "dashboards/run_compare.html",
            {"error": exc.message, "max_runs": MAX_COMPARED_RUNS},
            status=exc.status_code,
        )
    context = comparison_of(runs)
    context["figures"] = [
        {
            "id": f"figure-{i}",
            "data_id": f"figure-{i}-data",
            "title": title,
            "data": figure_for_browser(json.loads(fig.to_json())),
        }
        for i, (title, fig) in enumerate(context["figures"])
    ]
    context["api_url"] = reverse("api-run-compare") + "?ids=" + ",".join(str(run.pk) for run in runs)
    return render(request, "dashboards/run_compare.html", context)
