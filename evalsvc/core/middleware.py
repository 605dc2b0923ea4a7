"""Response policies that hold for every view."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers

from .exceptions import Unavailable


class PrivateResponsesMiddleware:
    """Nothing a signed-in user sees, and no API answer, is kept by a browser or a proxy.

    ``Cache-Control: no-store`` (with ``private``, ``no-cache``, ``max-age=0``):
    a shared computer's back button or a proxy's cache must not show one
    user's models, results or audit trail to the next person. Static files are
    answered by WhiteNoise before this runs and keep their long cache lifetime.

    A service that cannot go on safely (``Unavailable``) answers 503 with its
    message on pages too; the API's exception handler does the same for the API.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if request.path.startswith("/api/") or (user is not None and user.is_authenticated):
            add_never_cache_headers(response)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, Unavailable):
            return render(request, "503.html", {"message": exception.message}, status=503)
        return None
