"""Domain errors and their translation to HTTP answers.

Services raise these; the API layer turns each into a 4xx with a message
that says what is wrong. Anything else is a bug and stays a 500.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler


class ApplicationError(Exception):
    """A request that cannot be done as asked; shown to the user."""

    status_code = 400

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class ValidationFailed(ApplicationError):
    status_code = 400


class NotFound(ApplicationError, Http404):
    """Also an Http404, so HTML views answer with the 404 page without catching it."""

    status_code = 404


class Forbidden(ApplicationError):
    status_code = 403


class Conflict(ApplicationError):
    status_code = 409


class TooLarge(ApplicationError):
    """The request body passes a size limit; 413."""

    status_code = 413


class Unavailable(ApplicationError):
    """The service cannot do this safely now (an operator must act); 503."""

    status_code = 503


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return Response({"detail": exc.message, **exc.extra}, status=exc.status_code)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    return exception_handler(exc, context)
