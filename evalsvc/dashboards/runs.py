"""The runs list: every run you may see, with kind, model, data set, headline and status; filtered and paged."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from evalsvc.evaluations.kinds import all_kinds
from evalsvc.evaluations.models import RunStatus
from evalsvc.evaluations.selectors import runs_for_user

PAGE_SIZE = 25


def headline(result: dict[str, Any] | None) -> str:
    """One number that says how a finished run went, read from the shape of its stored result
    (metrics, compared candidates, variants made, measured configurations); empty when there is none."""
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
    return ""


@login_required
def run_list(request: HttpRequest) -> HttpResponse:
    runs = runs_for_user(user=request.user).select_related("created_by").order_by("-created_at")
    filters = {k: (request.GET.get(k) or "").strip() for k in ("kind", "status", "model", "dataset")}
    if filters["kind"]:
        runs = runs.filter(kind=filters["kind"])
    if filters["status"]:
        runs = runs.filter(status=filters["status"])
    if filters["model"]:
        runs = runs.filter(model_version__registered_model__name__icontains=filters["model"])
    if filters["dataset"]:
        runs = runs.filter(dataset_version__dataset__name__icontains=filters["dataset"])
    page = Paginator(runs, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [{"run": run, "headline": headline(run.result)} for run in page.object_list]
    query = urlencode({k: v for k, v in filters.items() if v})
    return render(
        request,
        "dashboards/run_list.html",
        {
            "page": page,
            "rows": rows,
            "filters": filters,
            "query": query,
            "kinds": [(k.name, k.label) for k in all_kinds()],
            "statuses": RunStatus.choices,
        },
    )
