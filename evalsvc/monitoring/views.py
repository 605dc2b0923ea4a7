"""Monitor pages: the list, one monitor's timeline and history, and the licences page."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from evalsvc.core.exceptions import ApplicationError
from evalsvc.core.users import signed_in_user
from evalsvc.dashboards.plotlytext import figure_for_browser
from evalsvc.evaluations.kinds.drift.figures import drift_figures
from evalsvc.evaluations.kinds.drift.section import drift_tables

from . import selectors, services
from .figures import model_timeline, timeline
from .forms import MonitorForm
from .tables import model_tables


@login_required
def monitor_list(request: HttpRequest) -> HttpResponse:
    return render(
        request, "monitoring/list.html", {"monitors": selectors.monitors_for_user(user=signed_in_user(request))}
    )


@login_required
def monitor_new(request: HttpRequest) -> HttpResponse:
    form = MonitorForm(request.POST or None, user=signed_in_user(request))
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            monitor = services.monitor_create(
                user=signed_in_user(request), data=form.data_for_service(), service_host=request.get_host()
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
            status = exc.status_code
        else:
            messages.info(
                request,
                f"Monitor created. Its webhook secret, shown this once, is {monitor.webhook_secret}",
            )
            return redirect("monitor-detail", pk=monitor.pk)
    elif request.method == "POST":
        status = 400
    return render(request, "monitoring/new.html", {"form": form}, status=status)


@login_required
def monitor_detail(request: HttpRequest, pk: str) -> HttpResponse:
    monitor = selectors.monitor_get(user=signed_in_user(request), pk=pk)
    checks = list(selectors.checks_for(monitor)[:200])
    alerts = list(selectors.alerts_for(monitor)[:200])
    alpha = float((monitor.detectors or {}).get("alpha", 0.05))
    alerted = {str(a.check_run_id) for a in alerts}
    for c in checks:  # the model's columns of the checks table
        metrics = ((c.result or {}).get("performance") or {}).get("metrics") or {}
        c.ndcg = ((c.result or {}).get("attribution") or {}).get("ndcg")  # type: ignore[attr-defined]
        c.headline = metrics.get("accuracy", metrics.get("mae"))  # type: ignore[attr-defined]
    figure = timeline(checks, alpha=alpha, alerted=alerted)
    threshold = float((monitor.detectors or {}).get("attribution_threshold", 0.9))
    model_figure = model_timeline(checks, threshold=threshold, alerted=alerted)
    return render(
        request,
        "monitoring/detail.html",
        {
            "monitor": monitor,
            "checks": checks[:50],
            "alerts": alerts[:50],
            "batches": selectors.batches_for(monitor)[:20],
            "figure": {
                "id": "timeline",
                "data_id": "timeline-data",
                "data": figure_for_browser(json.loads(figure.to_json())),
            },
            "model_figure": model_figure
            and {
                "id": "model-timeline",
                "data_id": "model-timeline-data",
                "data": figure_for_browser(json.loads(model_figure.to_json())),
            },
            "detectors_json": json.dumps(monitor.detectors, indent=2, sort_keys=True),
        },
    )


@login_required
def check_detail(request: HttpRequest, pk: str, check_pk: str) -> HttpResponse:
    """One check: columns ranked by effect size, reference-vs-current distributions, the tests' table."""
    monitor = selectors.monitor_get(user=signed_in_user(request), pk=pk)
    check = get_object_or_404(selectors.checks_for(monitor), pk=check_pk)
    result = check.result or {}
    figures = [
        {"id": f"figure-{i}", "data_id": f"figure-{i}-data", "title": title,
         "data": figure_for_browser(json.loads(fig.to_json()))}
        for i, (title, fig) in enumerate(drift_figures(result))
    ]  # fmt: skip
    return render(
        request,
        "monitoring/check.html",
        {
            "monitor": monitor,
            "check": check,
            "figures": figures,
            "tables": [*(drift_tables(result) if result else []), *model_tables(result)],
            "params_json": json.dumps(result.get("params") or {}, indent=2, sort_keys=True),
        },
    )


def about(request: HttpRequest) -> HttpResponse:
    return render(request, "monitoring/about.html")
