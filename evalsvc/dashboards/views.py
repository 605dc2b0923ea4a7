"""Read-only pages. Every lookup goes through the team-scoped selectors."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.shortcuts import render
from django.templatetags.static import static

from evalsvc.core.users import signed_in_user
from evalsvc.evaluations.kinds import JobContext, JobKind, get_kind
from evalsvc.evaluations.selectors import run_get, runs_for_user
from evalsvc.registry.selectors import (
    dataset_version_get,
    dataset_versions_for_user,
    model_version_get,
    model_versions_for_user,
)
from evalsvc.teams.models import WRITE_ROLES
from evalsvc.teams.selectors import role_for, teams_for_user

from .figurecache import run_figures


def favicon(request: HttpRequest) -> HttpResponse:
    """Pages without a <link rel="icon"> (the API docs) make browsers ask for /favicon.ico."""
    return HttpResponsePermanentRedirect(static("favicon.svg"))


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    return render(
        request,
        "dashboards/home.html",
        {
            "teams": teams_for_user(user=user),
            "model_versions": model_versions_for_user(user=user)[:50],
            "dataset_versions": dataset_versions_for_user(user=user)[:50],
            "runs": runs_for_user(user=user)[:50],
        },
    )


@login_required
def model_version_detail(request: HttpRequest, pk: str) -> HttpResponse:
    version = model_version_get(user=signed_in_user(request), pk=pk)
    runs = runs_for_user(user=signed_in_user(request)).filter(model_version=version)[:50]
    processing_json = json.dumps(version.processing, indent=2) if version.processing else ""
    return render(
        request,
        "registry/model_version_detail.html",
        {
            "version": version,
            "runs": runs,
            "processing_json": processing_json,
            "can_edit": role_for(user=signed_in_user(request), team=version.team) in WRITE_ROLES,
        },
    )


@login_required
def dataset_version_detail(request: HttpRequest, pk: str) -> HttpResponse:
    version = dataset_version_get(user=signed_in_user(request), pk=pk)
    runs = runs_for_user(user=signed_in_user(request)).filter(dataset_version=version)[:50]
    return render(request, "registry/dataset_version_detail.html", {"version": version, "runs": runs})


def _kind_part(run: Any, kind: JobKind, result: dict[str, Any]) -> dict[str, Any]:
    """What the page shows of a succeeded run's result: the kind's own template and its context, or,
    for a kind without a template, the tables of its report section laid out generically."""
    if run.status != "succeeded":
        return {"kind_template": None}
    if kind.template:
        return {"kind_template": kind.template, **(kind.page_context(result) if kind.page_context else {})}
    section = kind.section(
        JobContext(
            kind=kind.name,
            label=kind.label,
            params=run.params or {},
            result=result,
            dataset=str(run.dataset_version) if run.dataset_version else None,
        )
    )
    return {"kind_template": "dashboards/kinds/_generic.html", "section": section, "has_csv": kind.csv_rows is not None}


@login_required
def run_detail(request: HttpRequest, pk: str) -> HttpResponse:
    run = run_get(user=signed_in_user(request), pk=pk)
    kind = get_kind(run.kind)
    result = run.result or {}
    return render(
        request,
        "dashboards/run_detail.html",
        {
            "run": run,
            "kind": kind,
            **_kind_part(run, kind, result),
            "figures": run_figures(run, kind),
            "params_json": json.dumps(run.params, indent=2, sort_keys=True),
            "environment_json": json.dumps(run.environment, indent=2, sort_keys=True),
        },
    )
