from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.text import slugify

from evalsvc.audit.services import audit_record
from evalsvc.core.exceptions import Conflict, Forbidden, NotFound, ValidationFailed

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


def _require_owner(*, team: Team, actor: Any) -> None:
    role = Membership.objects.filter(team=team, user=actor).values_list("role", flat=True).first()
    if role is None:
        raise NotFound("team not found")
    if role != Role.OWNER:
        raise Forbidden(f"only owners of team {team.slug!r} manage its members; your role is {role}")


def _keep_an_owner(*, team: Team, user: Any) -> None:
    others = Membership.objects.filter(team=team, role=Role.OWNER).exclude(user=user).exists()
    if not others:
        raise Conflict(f"{user.get_username()} is the last owner of team {team.slug!r}; make someone else owner first")


@transaction.atomic
def member_add_or_change(*, team: Team, actor: Any, username: str, role: str) -> Membership:
    """Add a user to the team or change their role (owners only), keeping at least one owner."""
    _require_owner(team=team, actor=actor)
    if role not in Role.values:
        raise ValidationFailed(f"unknown role {role!r}; roles are {', '.join(Role.values)}")
    user = User.objects.filter(username=username).first()
    if user is None:
        raise ValidationFailed(f"no user is called {username!r}")
    current = Membership.objects.select_for_update().filter(team=team, user=user).first()
    if current is not None and current.role == Role.OWNER and role != Role.OWNER:
        _keep_an_owner(team=team, user=user)
    return membership_set(team=team, user=user, role=role, actor=actor)


@transaction.atomic
def member_remove(*, team: Team, actor: Any, username: str) -> None:
    _require_owner(team=team, actor=actor)
    membership = Membership.objects.select_for_update().filter(team=team, user__username=username).first()
    if membership is None:
        raise NotFound(f"{username!r} is not a member of team {team.slug!r}")
    if membership.role == Role.OWNER:
        _keep_an_owner(team=team, user=membership.user)
    details = {"user": username, "previous_role": membership.role}
    audit_record(actor=actor, team=team, action="membership.removed", obj=membership, details=details)
    membership.delete()
