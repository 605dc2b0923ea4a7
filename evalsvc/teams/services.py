from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils.text import slugify

from evalsvc.audit.services import audit_record
from evalsvc.core.exceptions import Conflict, Forbidden, NotFound, ValidationFailed
from evalsvc.core.models import Pk
from evalsvc.core.users import User

from .models import Invitation, Membership, Role, Team


@transaction.atomic
def team_create(*, name: str, owner: User, slug: str | None = None) -> Team:
    team = Team.objects.create(name=name, slug=slug or slugify(name)[:60])
    Membership.objects.create(team=team, user=owner, role=Role.OWNER)
    audit_record(actor=owner, team=team, action="team.created", obj=team, details={"slug": team.slug, "name": name})
    return team


@transaction.atomic
def membership_set(*, team: Team, user: User, role: str, actor: User | None = None) -> Membership:
    previous = Membership.objects.filter(team=team, user=user).values_list("role", flat=True).first()
    membership, _ = Membership.objects.update_or_create(team=team, user=user, defaults={"role": Role(role)})
    if previous != membership.role:
        action = "membership.added" if previous is None else "membership.role_changed"
        details = {"user": user.get_username(), "role": membership.role, "previous_role": previous}
        audit_record(actor=actor, team=team, action=action, obj=membership, details=details)
    return membership


def require_owner(*, team: Team, actor: User) -> None:
    role = Membership.objects.filter(team=team, user=actor).values_list("role", flat=True).first()
    if role is None:
        raise NotFound("team not found")
    if role != Role.OWNER:
        raise Forbidden(f"only owners of team {team.slug!r} manage its members; your role is {role}")


def _keep_an_owner(*, team: Team, user: User) -> None:
    others = Membership.objects.filter(team=team, role=Role.OWNER).exclude(user=user).exists()
    if not others:
        raise Conflict(f"{user.get_username()} is the last owner of team {team.slug!r}; make someone else owner first")


@transaction.atomic
def member_add_or_change(*, team: Team, actor: User, username: str, role: str) -> Membership | Invitation:
    """Invite a user to the team, or change a member's role (owners only), keeping at least one owner.

    Nobody joins a team without consenting: a user who is not a member yet
    gets an invitation (the latest role offered) and becomes a member by
    accepting it. Until then the team sees nothing of them.
    """
    require_owner(team=team, actor=actor)
    if role not in Role.values:
        raise ValidationFailed(f"unknown role {role!r}; roles are {', '.join(Role.values)}")
    user = User.objects.filter(username=username).first()
    if user is None:
        raise ValidationFailed(f"no user is called {username!r}")
    current = Membership.objects.select_for_update().filter(team=team, user=user).first()
    if current is None:
        return invitation_send(team=team, actor=actor, user=user, role=role)
    if current.role == Role.OWNER and role != Role.OWNER:
        _keep_an_owner(team=team, user=user)
    return membership_set(team=team, user=user, role=role, actor=actor)


def invitation_send(*, team: Team, actor: User, user: User, role: str) -> Invitation:
    invitation, created = Invitation.objects.update_or_create(
        team=team, user=user, defaults={"role": Role(role), "invited_by": actor}
    )
    details = {"user": user.get_username(), "role": invitation.role, "renewed": not created}
    audit_record(actor=actor, team=team, action="membership.invited", obj=invitation, details=details)
    return invitation


def _my_invitation(*, user: User, invitation_id: Pk) -> Invitation:
    try:
        return Invitation.objects.select_for_update().select_related("team").get(pk=invitation_id, user=user)
    except (Invitation.DoesNotExist, ValueError, DjangoValidationError):
        raise NotFound("invitation not found") from None


@transaction.atomic
def invitation_accept(*, user: User, invitation_id: Pk) -> Membership:
    """The invited user joins the team with the role offered."""
    invitation = _my_invitation(user=user, invitation_id=invitation_id)
    team, role = invitation.team, invitation.role
    inviter = invitation.invited_by.get_username() if invitation.invited_by else None
    invitation.delete()
    membership, _ = Membership.objects.update_or_create(team=team, user=user, defaults={"role": role})
    details = {"user": user.get_username(), "role": role, "previous_role": None, "invited_by": inviter}
    audit_record(actor=user, team=team, action="membership.added", obj=membership, details=details)
    return membership


@transaction.atomic
def invitation_decline(*, user: User, invitation_id: Pk) -> None:
    invitation = _my_invitation(user=user, invitation_id=invitation_id)
    details = {"user": user.get_username(), "role": invitation.role}
    audit_record(actor=user, team=invitation.team, action="membership.declined", obj=invitation, details=details)
    invitation.delete()


@transaction.atomic
def member_remove(*, team: Team, actor: User, username: str) -> None:
    require_owner(team=team, actor=actor)
    membership = Membership.objects.select_for_update().filter(team=team, user__username=username).first()
    if membership is None:
        invitation = Invitation.objects.filter(team=team, user__username=username).first()
        if invitation is None:
            raise NotFound(f"{username!r} is not a member of team {team.slug!r}")
        details = {"user": username, "role": invitation.role}
        audit_record(actor=actor, team=team, action="membership.invitation_withdrawn", obj=invitation, details=details)
        invitation.delete()
        return
    if membership.role == Role.OWNER:
        _keep_an_owner(team=team, user=membership.user)
    details = {"user": username, "previous_role": membership.role}
    audit_record(actor=actor, team=team, action="membership.removed", obj=membership, details=details)
    membership.delete()
