"""Team scoping in one place: every read of team-owned rows goes through here.

An object of a team the user is not a member of does not exist for them:
lookups answer 404, never 403, and never its data.
"""

from __future__ import annotations

from typing import TypeVar

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model, QuerySet

from evalsvc.core.exceptions import Forbidden, NotFound
from evalsvc.core.users import AnyUser

from .models import WRITE_ROLES, Membership, Team

M = TypeVar("M", bound=Model)


def teams_for_user(*, user: AnyUser) -> QuerySet[Team]:
    if not user.is_authenticated:
        return Team.objects.none()
    return Team.objects.filter(memberships__user=user).distinct()


def scope_to_user(queryset: QuerySet[M], *, user: AnyUser, team_field: str = "team") -> QuerySet[M]:
    """Restrict any team-owned queryset to the teams `user` belongs to.

    A subquery on the user's memberships, not a join: a join needs DISTINCT,
    which makes the database compare whole rows (JSON results included) of a
    large list before it can page it.
    """
    if not user.is_authenticated:
        return queryset.none()
    teams = Membership.objects.filter(user=user).values("team_id")
    return queryset.filter(**{f"{team_field}__in": teams})


def get_scoped(queryset: QuerySet[M], *, user: AnyUser, pk: object, what: str, team_field: str = "team") -> M:
    try:
        return scope_to_user(queryset, user=user, team_field=team_field).get(pk=pk)
    except (ObjectDoesNotExist, ValueError, TypeError, DjangoValidationError):
        # A malformed id is as unknown as another team's id.
        raise NotFound(f"{what} not found") from None


def team_get_for_user(*, user: AnyUser, team: str) -> Team:
    """Find a team by slug or id among the user's teams; otherwise a clear 404."""
    teams = teams_for_user(user=user)
    found = teams.filter(slug=team).first()
    if found is None:
        try:
            found = teams.filter(pk=team).first()
        except DjangoValidationError:  # neither a known slug nor a UUID
            found = None
    if found is None:
        raise NotFound(f"team {team!r} does not exist or you are not a member of it")
    return found


def role_for(*, user: AnyUser, team: Team) -> str | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, team=team).values_list("role", flat=True).first()


def require_write(*, user: AnyUser, team: Team) -> None:
    role = role_for(user=user, team=team)
    if role is None:
        raise NotFound("team not found")
    if role not in WRITE_ROLES:
        raise Forbidden(f"your role in team {team.slug!r} is {role}; registering and running needs owner or editor")
