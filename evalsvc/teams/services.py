from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.text import slugify

from evalsvc.audit.services import audit_record

from .models import Membership, Role, Team

User = get_user_model()


@transaction.atomic
def team_create(*, name: str, owner: User, slug: str | None = None) -> Team:  # type: ignore[valid-type]
    team = Team.objects.create(name=name, slug=slug or slugify(name)[:60])
    Membership.objects.create(team=team, user=owner, role=Role.OWNER)
    audit_record(actor=owner, team=team, action="team.created", obj=team, details={"slug": team.slug, "name": name})
    return team


@transaction.atomic
def membership_set(*, team: Team, user: User, role: str, actor: Any = None) -> Membership:  # type: ignore[valid-type]
    previous = Membership.objects.filter(team=team, user=user).values_list("role", flat=True).first()
    membership, _ = Membership.objects.update_or_create(team=team, user=user, defaults={"role": Role(role)})
    if previous != membership.role:
        action = "membership.added" if previous is None else "membership.role_changed"
        details = {"user": user.get_username(), "role": membership.role, "previous_role": previous}
        audit_record(actor=actor, team=team, action=action, obj=membership, details=details)
    return membership
