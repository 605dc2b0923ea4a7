"""The invitations page: a user sees the teams that invited them, and accepts or declines."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from evalsvc.core.exceptions import NotFound

from . import services
from .models import Invitation


@login_required
def invitation_list(request: HttpRequest) -> HttpResponse:
    mine = Invitation.objects.filter(user=request.user).select_related("team", "invited_by")
    return render(request, "teams/invitations.html", {"invitations": mine})


@login_required
@require_POST
def invitation_answer(request: HttpRequest, pk: str, answer: str) -> HttpResponse:
    if answer == "accept":
        membership = services.invitation_accept(user=request.user, invitation_id=pk)
        messages.success(request, f"You joined team {membership.team.name} as {membership.role}.")
    elif answer == "decline":
        services.invitation_decline(user=request.user, invitation_id=pk)
        messages.success(request, "Invitation declined.")
    else:
        raise NotFound("no such answer")
    return redirect("invitations")
