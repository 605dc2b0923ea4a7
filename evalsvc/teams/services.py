from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.text import slugify

from .models import Membership, Role, Team

User = get_user_model()


@transaction.atomic
def team_create(*, name: str, owner: User, slug: str | None = None) -> Team:  # type: ignore[valid-type]
    team = Team.objects.create(name=name, slug=slug or slugify(name)[:60])
    Membership.objects.create(team=team, user=owner, role=Role.OWNER)
    return team


def membership_set(*, team: Team, user: User, role: str) -> Membership:  # type: ignore[valid-type]
    membership, _ = Membership.objects.update_or_create(team=team, user=user, defaults={"role": Role(role)})
    return membership
