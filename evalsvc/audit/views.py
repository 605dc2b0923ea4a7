"""The audit trail page: filters, CSV export and a chain check, for owners and auditors."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from evalsvc.core.exceptions import ApplicationError, NotFound
from evalsvc.core.users import signed_in_user

from . import selectors
from .services import audit_verify

FILTER_KEYS = ("team", "action", "actor", "object_id", "since", "until")


@login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    filters = {k: request.GET.get(k, "").strip() for k in FILTER_KEYS}
    teams = selectors.audit_teams_for_user(user=signed_in_user(request))
    error, page, verify = "", None, None
    status = 200
    try:
        entries = selectors.audit_entries_for_user(
            user=signed_in_user(request), **{k: v or None for k, v in filters.items()}
        )
        page = Paginator(entries, 100).get_page(request.GET.get("page"))
        if filters["team"] and request.GET.get("verify"):
            verify = audit_verify(
                team=selectors.audit_team_for_user(user=signed_in_user(request), team=filters["team"])
            )
    except NotFound:
        raise
    except ApplicationError as exc:
        error, status = exc.message, exc.status_code
    query = urlencode({k: v for k, v in filters.items() if v})
    return render(
        request,
        "audit/log.html",
        {
            "teams": teams,
            "filters": filters,
            "page": page,
            "error": error,
            "query": query,
            "verify": verify,
            "sign_ins": selectors.audit_sign_ins_for_user(user=signed_in_user(request))[:20],
        },
        status=status,
    )
