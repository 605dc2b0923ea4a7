"""Team pages: a user's teams, each team's members and roles (owners manage them), and invitations to answer."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from evalsvc.core.exceptions import ApplicationError, Forbidden, NotFound
from evalsvc.core.users import signed_in_user

from . import services
from .models import Invitation, Membership, Role
from .selectors import role_for, team_get_for_user


@login_required
def invitation_list(request: HttpRequest) -> HttpResponse:
    mine = Invitation.objects.filter(user=signed_in_user(request)).select_related("team", "invited_by")
    return render(request, "teams/invitations.html", {"invitations": mine})


@login_required
@require_POST
def invitation_answer(request: HttpRequest, pk: str, answer: str) -> HttpResponse:
    if answer == "accept":
        membership = services.invitation_accept(user=signed_in_user(request), invitation_id=pk)
        messages.success(request, f"You joined team {membership.team.name} as {membership.role}.")
    elif answer == "decline":
        services.invitation_decline(user=signed_in_user(request), invitation_id=pk)
        messages.success(request, "Invitation declined.")
    else:
        raise NotFound("no such answer")
    return redirect("invitations")


@login_required
def team_list(request: HttpRequest) -> HttpResponse:
    memberships = Membership.objects.filter(user=signed_in_user(request)).select_related("team").order_by("team__name")
    return render(request, "teams/team_list.html", {"memberships": memberships})


@login_required
def team_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """Members and their roles for every member; owners also invite, change roles and remove."""
    team = team_get_for_user(user=signed_in_user(request), team=slug)
    is_owner = role_for(user=signed_in_user(request), team=team) == Role.OWNER
    if request.method == "POST":
        if not is_owner:
            raise Forbidden("only owners manage a team's members")
        username = (request.POST.get("username") or "").strip()
        try:
            if request.POST.get("action") == "remove":
                services.member_remove(team=team, actor=signed_in_user(request), username=username)
                messages.success(request, f"{username} is no longer in the team.")
            else:
                done = services.member_add_or_change(
                    team=team, actor=signed_in_user(request), username=username, role=request.POST.get("role") or ""
                )
                if isinstance(done, Invitation):
                    messages.success(request, f"{username} is invited as {done.role}; they join when they accept.")
                else:
                    messages.success(request, f"{username} is now {done.role}.")
        except ApplicationError as exc:
            messages.error(request, exc.message)
        return redirect("team-detail", slug=team.slug)
    members = Membership.objects.filter(team=team).select_related("user").order_by("user__username")
    invitations = Invitation.objects.filter(team=team).select_related("user", "invited_by") if is_owner else []
    return render(
        request,
        "teams/team_detail.html",
        {"team": team, "members": members, "invitations": invitations, "is_owner": is_owner, "roles": Role.values},
    )
