from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .selectors import STALE_AFTER_S, backends_overview, live_workers, offers


@login_required
def backend_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "fleet/backends.html",
        {
            "offers": offers(),
            "backends": backends_overview(),
            "workers": live_workers(),
            "stale_after_s": STALE_AFTER_S,
        },
    )
