from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from evalsvc.audit.services import audit_record
from evalsvc.core.users import signed_in_user

from . import services
from .models import Invitation, Membership, Role, Team
from .selectors import team_get_for_user, teams_for_user
from .signin import lockout_message


class TeamOut(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Team
        fields = ["id", "name", "slug", "role"]

    def get_role(self, team: Team) -> str | None:
        user = self.context["request"].user
        return Membership.objects.filter(team=team, user=user).values_list("role", flat=True).first()


class TeamListApi(APIView):
    @extend_schema(responses=TeamOut(many=True))
    def get(self, request: Request) -> Response:
        teams = teams_for_user(user=signed_in_user(request))
        return Response(TeamOut(teams, many=True, context={"request": request}).data)


class TokenApi(ObtainAuthToken):
    """Exchange a username and password for the user's API token (send it as `Authorization: Token …`).

    Throttled twice: a rate per address on the endpoint, and the sign-in lockout
    per account and per address shared with the login page (429 either way).
    """

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "sign_in"

    @extend_schema(responses={200: dict, 400: dict, 429: dict})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except ValidationError:
            # The lockout check ran inside authenticate() and marked the request.
            if getattr(request, "axes_locked_out", False):
                wait = settings.AXES_COOLOFF_TIME.total_seconds()
                raise Throttled(wait=wait, detail=f"sign-in refused: {lockout_message(request)}") from None
            raise
        user = serializer.validated_data["user"]
        token, _ = Token.objects.get_or_create(user=user)
        details = {"via": "api token", "ip": request.META.get("REMOTE_ADDR", "")}
        audit_record(actor=user, team=None, action="user.signed_in", obj=user, details=details)
        return Response({"token": token.key})


class MemberOut(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")
    status = serializers.SerializerMethodField(help_text='"member", or "invited" until the user accepts.')

    class Meta:
        model = Membership
        fields = ["username", "role", "status", "created_at"]

    def get_status(self, obj: Membership | Invitation) -> str:
        return "invited" if isinstance(obj, Invitation) else "member"


class MemberIn(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.values)


class MemberListApi(APIView):
    """Members of a team; owners invite users and change members' roles (every change is audited).

    A user who is not a member yet is invited (`status: "invited"`): they join
    only by accepting (`POST /api/invitations/{id}/accept/`).
    """

    @extend_schema(responses=MemberOut(many=True))
    def get(self, request: Request, team: str) -> Response:
        found = team_get_for_user(user=signed_in_user(request), team=team)
        members = Membership.objects.filter(team=found).select_related("user").order_by("user__username")
        return Response(MemberOut(members, many=True).data)

    @extend_schema(request=MemberIn, responses={200: MemberOut})
    def post(self, request: Request, team: str) -> Response:
        found = team_get_for_user(user=signed_in_user(request), team=team)
        body = MemberIn(data=request.data)
        body.is_valid(raise_exception=True)
        membership = services.member_add_or_change(
            team=found,
            actor=signed_in_user(request),
            username=body.validated_data["username"],
            role=body.validated_data["role"],
        )
        return Response(MemberOut(membership).data)


class MemberDetailApi(APIView):
    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, team: str, username: str) -> Response:
        """Remove a member, or withdraw a pending invitation (owners only)."""
        found = team_get_for_user(user=signed_in_user(request), team=team)
        services.member_remove(team=found, actor=signed_in_user(request), username=username)
        return Response(status=204)


class TeamInvitationListApi(APIView):
    """A team's pending invitations (owners only)."""

    @extend_schema(responses=MemberOut(many=True))
    def get(self, request: Request, team: str) -> Response:
        found = team_get_for_user(user=signed_in_user(request), team=team)
        services.require_owner(team=found, actor=signed_in_user(request))
        pending = Invitation.objects.filter(team=found).select_related("user").order_by("user__username")
        return Response(MemberOut(pending, many=True).data)


class InvitationOut(serializers.ModelSerializer):
    team = serializers.CharField(source="team.slug")
    team_name = serializers.CharField(source="team.name")
    invited_by = serializers.CharField(source="invited_by.username", allow_null=True, default=None)

    class Meta:
        model = Invitation
        fields = ["id", "team", "team_name", "role", "invited_by", "created_at"]


class InvitationListApi(APIView):
    """Your pending invitations to teams."""

    @extend_schema(responses=InvitationOut(many=True))
    def get(self, request: Request) -> Response:
        mine = Invitation.objects.filter(user=signed_in_user(request)).select_related("team", "invited_by")
        return Response(InvitationOut(mine, many=True).data)


class InvitationAcceptApi(APIView):
    @extend_schema(request=None, responses={200: MemberOut})
    def post(self, request: Request, pk: str) -> Response:
        """Join the team with the role offered."""
        return Response(MemberOut(services.invitation_accept(user=signed_in_user(request), invitation_id=pk)).data)


class InvitationDeclineApi(APIView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request, pk: str) -> Response:
        services.invitation_decline(user=signed_in_user(request), invitation_id=pk)
        return Response(status=204)
