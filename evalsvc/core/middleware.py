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


class ForwardedClientAddressMiddleware:
    """Behind ``EVALSVC_TRUSTED_PROXY_COUNT`` reverse proxies, the client's address is the one they forwarded.

    Sign-in lockout by address reads ``REMOTE_ADDR``, which behind a proxy is
    the proxy's own address: every client would share one lockout. The entry
    the outermost trusted proxy appended to ``X-Forwarded-For`` (counted from
    the right, as the API throttles count) replaces it; entries a client wrote
    itself are further left and never chosen. With no trusted proxy (the
    default) nothing changes.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        from django.conf import settings

        self.get_response = get_response
        self.proxies = int(getattr(settings, "EVALSVC_TRUSTED_PROXY_COUNT", 0))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if self.proxies > 0 and forwarded:
            addresses = [a.strip() for a in forwarded.split(",") if a.strip()]
            if addresses:
                request.META["REMOTE_ADDR"] = addresses[-min(self.proxies, len(addresses))]
        return self.get_response(request)
