"""The runs list: every run you may see, with kind, model, data set, headline and status; filtered and paged."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from evalsvc.core.users import signed_in_user
from evalsvc.evaluations.kinds import all_kinds
from evalsvc.evaluations.models import RunStatus
from evalsvc.evaluations.selectors import runs_for_user

PAGE_SIZE = 25


@login_required
def run_list(request: HttpRequest) -> HttpResponse:
    runs = runs_for_user(user=signed_in_user(request)).order_by("-created_at")
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
    rows = [{"run": run, "headline": run.headline} for run in page.object_list]
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
