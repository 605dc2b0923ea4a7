"""Sign-ins, and failed ones, are recorded from Django's signals: the login view is Django's own."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from evalsvc.core.users import User

from .services import audit_record


def record_sign_in(sender: Any, request: Any, user: User, **kwargs: Any) -> None:
    details: dict[str, Any] = {"via": "session"}
    if request is not None:
        details["ip"] = request.META.get("REMOTE_ADDR", "")
        details["user_agent"] = request.META.get("HTTP_USER_AGENT", "")[:200]
    audit_record(actor=user, team=None, action="user.signed_in", obj=user, details=details)


def _via(request: Any) -> str:
    path = getattr(request, "path", "") or ""
    if path.startswith("/api/"):
        return "api token"
    if path.startswith("/admin/"):
        return "admin"
    return "session"


def record_sign_in_failure(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    """A wrong password, an unknown username, or an attempt refused by the lockout.

    Attempts without a request (a management command) are not network sign-ins
    and are not recorded. The entry names the account tried, so that the
    account's owner can see the attempts on it.
    """
    if request is None:
        return
    username = str(credentials.get("username") or "")[:150]
    user = get_user_model().objects.filter(username=username).first() if username else None
    details: dict[str, Any] = {
        "via": _via(request),
        "username": username,
        "ip": request.META.get("REMOTE_ADDR", ""),
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:200],
        # Set by the lockout check: this attempt was refused, or it reached the limit.
        "locked_out": bool(getattr(request, "axes_locked_out", False)),
    }
    audit_record(
        actor=None, actor_label="anonymous", team=None, action="user.sign_in_failed", obj=user, details=details
    )
