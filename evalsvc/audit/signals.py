"""Sign-in is recorded from Django's signal: the login view is Django's own."""

from __future__ import annotations

from typing import Any

from .services import audit_record


def record_sign_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    details: dict[str, Any] = {"via": "session"}
    if request is not None:
        details["ip"] = request.META.get("REMOTE_ADDR", "")
        details["user_agent"] = request.META.get("HTTP_USER_AGENT", "")[:200]
    audit_record(actor=user, team=None, action="user.signed_in", obj=user, details=details)
