"""Read-only pages. Every lookup goes through the team-scoped selectors."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from evalsvc.evaluations.kinds import get_kind
from evalsvc.evaluations.selectors import run_get, runs_for_user
from evalsvc.registry.selectors import (
    dataset_version_get,
    dataset_versions_for_user,
    model_version_get,
    model_versions_for_user,
)
from evalsvc.teams.selectors import teams_for_user

from .figures import METRIC_LABELS, figures_for, profile_rows, variant_rows


def _headline_metrics(result: dict) -> list[dict]:
    metrics = result.get("metrics", {})
    return [
        {"key": key, "label": label, "value": metrics.get(key)}
        for key, label in METRIC_LABELS.get(result.get("task", ""), [])
        if key in metrics
    ]


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
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
    version = model_version_get(user=request.user, pk=pk)
    runs = runs_for_user(user=request.user).filter(model_version=version)[:50]
    processing_json = json.dumps(version.processing, indent=2) if version.processing else ""
    return render(
        request,
        "registry/model_version_detail.html",
        {"version": version, "runs": runs, "processing_json": processing_json},
    )


@login_required
def dataset_version_detail(request: HttpRequest, pk: str) -> HttpResponse:
    version = dataset_version_get(user=request.user, pk=pk)
    runs = runs_for_user(user=request.user).filter(dataset_version=version)[:50]
    return render(request, "registry/dataset_version_detail.html", {"version": version, "runs": runs})


@login_required
def run_detail(request: HttpRequest, pk: str) -> HttpResponse:
    run = run_get(user=request.user, pk=pk)
    figures = [
        # Parsed back to a dict so json_script can escape it safely inside the page.
        {"id": f"figure-{i}", "data_id": f"figure-{i}-data", "title": title, "data": json.loads(fig.to_json())}
        for i, (title, fig) in enumerate(figures_for(run.kind, run.result))
    ]
    result = run.result or {}
    return render(
        request,
        "dashboards/run_detail.html",
        {
            "run": run,
            "kind": get_kind(run.kind),
            "kind_template": f"dashboards/kinds/{run.kind}.html",
            "variant_rows": variant_rows(result) if run.kind == "quantize" else [],
            "profile_rows": profile_rows(result) if run.kind == "profile" else [],
            "figures": figures,
            "metrics": _headline_metrics(result),
            "averaging": result.get("metrics", {}).get("average"),
            "positive_label": result.get("metrics", {}).get("positive_label"),
            "per_class": result.get("per_class", {}),
            "params_json": json.dumps(run.params, indent=2, sort_keys=True),
            "environment_json": json.dumps(run.environment, indent=2, sort_keys=True),
        },
    )
