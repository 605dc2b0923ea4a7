"""The team's report policy in the browser: thresholds and whether authors may approve (owners change it)."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from evalsvc.core.exceptions import ApplicationError
from evalsvc.core.users import signed_in_user
from evalsvc.teams.models import Role
from evalsvc.teams.selectors import role_for, team_get_for_user

from . import services
from .models import ReportPolicy


@login_required
def report_policy(request: HttpRequest, slug: str) -> HttpResponse:
    team = team_get_for_user(user=signed_in_user(request), team=slug)
    policy = ReportPolicy.objects.filter(team=team).first()
    thresholds_json = json.dumps(policy.thresholds if policy else {}, indent=2, sort_keys=True)
    if request.method == "POST":
        text = request.POST.get("thresholds") or "{}"
        try:
            thresholds = json.loads(text)
        except json.JSONDecodeError as exc:
            messages.error(request, f"the thresholds are not valid JSON: {exc.msg} (line {exc.lineno})")
            return redirect("report-policy", slug=team.slug)
        try:
            services.report_policy_set(
                user=signed_in_user(request),
                team=team,
                thresholds=thresholds,
                allow_self_approval=request.POST.get("allow_self_approval") == "on",
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Report policy saved; reports generated from now on use it.")
        return redirect("report-policy", slug=team.slug)
    return render(
        request,
        "reports/policy.html",
        {
            "team": team,
            "policy": policy,
            "thresholds_json": thresholds_json,
            "is_owner": role_for(user=signed_in_user(request), team=team) == Role.OWNER,
        },
    )
