"""What every page needs to know about the signed-in user's roles, to offer only what they may do."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from .models import WRITE_ROLES, Membership


def roles(request: HttpRequest) -> dict[str, Any]:
    """``can_write``: the user registers and submits in at least one team (owner or editor)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"can_write": False}
    return {"can_write": Membership.objects.filter(user=user, role__in=WRITE_ROLES).exists()}
