"""Sign-in throttling: the django-axes check in front of the password check.

Every sign-in that arrives over HTTP (login page, admin, token endpoint) goes
through ``SignInThrottleBackend`` first: an account or an address past its
failure limit is refused before its password is even compared.
"""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.helpers import get_cool_off
from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render


class SignInThrottleBackend(AxesStandaloneBackend):
    """django-axes' check, for sign-ins made by a request.

    A sign-in without a request (a management command, a shell) comes from no
    address and is not a guess over the network: it is left to the password check.
    """

    def authenticate(self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def lockout_message(request: Any) -> str:
    """What a refused sign-in is told: why, and for how long."""
    cool_off = get_cool_off(request) or settings.AXES_COOLOFF_TIME
    minutes = max(1, round(cool_off.total_seconds() / 60))
    return (
        f"too many failed sign-ins for this account or from this address "
        f"({settings.AXES_FAILURE_LIMIT} allowed); try again in {minutes} minutes"
    )


def lockout_response(request: Any, original_response: Any = None, credentials: Any = None) -> HttpResponse:
    """The login page's answer while an account or address is locked out (429)."""
    return render(request, "registration/locked_out.html", {"message": lockout_message(request)}, status=429)
