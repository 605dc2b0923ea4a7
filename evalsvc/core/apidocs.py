"""Who may read the OpenAPI schema and its documentation pages.

Signed-in users only, unless ``EVALSVC_PUBLIC_API_DOCS`` opens them: the
schema lists every endpoint and parameter, which is of use to an attacker
mapping the service and of no use to anyone who cannot sign in.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponseBase
from rest_framework.permissions import BasePermission


def docs_are_public() -> bool:
    return bool(getattr(settings, "EVALSVC_PUBLIC_API_DOCS", False))


class SchemaAccess(BasePermission):
    """The schema endpoint: any signed-in user, or anyone when the docs are public."""

    def has_permission(self, request: Any, view: Any) -> bool:
        return docs_are_public() or bool(request.user and request.user.is_authenticated)


def docs_page(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """A documentation page: signed-out visitors are sent to sign in first (unless public)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not docs_are_public() and not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapped
