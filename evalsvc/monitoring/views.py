"""Monitor pages: the list, one monitor's timeline and history, and the licences page."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from evalsvc.dashboards.plotlytext import figure_for_browser

from . import selectors
from .figures import timeline


@login_required
def monitor_list(request: HttpRequest) -> HttpResponse:
    return render(request, "monitoring/list.html", {"monitors": selectors.monitors_for_user(user=request.user)})


@login_required
def monitor_detail(request: HttpRequest, pk: str) -> HttpResponse:
    monitor = selectors.monitor_get(user=request.user, pk=pk)
    checks = list(selectors.checks_for(monitor)[:200])
    alerts = list(selectors.alerts_for(monitor)[:200])
    alpha = float((monitor.detectors or {}).get("alpha", 0.05))
    figure = timeline(checks, alpha=alpha, alerted={str(a.check_run_id) for a in alerts})
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
            "detectors_json": json.dumps(monitor.detectors, indent=2, sort_keys=True),
        },
    )


def about(request: HttpRequest) -> HttpResponse:
    return render(request, "monitoring/about.html")
