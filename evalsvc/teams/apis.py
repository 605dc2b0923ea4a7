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

from . import services
from .models import Membership, Role, Team
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
        teams = teams_for_user(user=request.user)
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

    class Meta:
        model = Membership
        fields = ["username", "role", "created_at"]


class MemberIn(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.values)


class MemberListApi(APIView):
    """Members of a team; owners add members and change roles (every change is audited)."""

    @extend_schema(responses=MemberOut(many=True))
    def get(self, request: Request, team: str) -> Response:
        found = team_get_for_user(user=request.user, team=team)
        members = Membership.objects.filter(team=found).select_related("user").order_by("user__username")
        return Response(MemberOut(members, many=True).data)

    @extend_schema(request=MemberIn, responses={200: MemberOut})
    def post(self, request: Request, team: str) -> Response:
        found = team_get_for_user(user=request.user, team=team)
        body = MemberIn(data=request.data)
        body.is_valid(raise_exception=True)
        membership = services.member_add_or_change(
            team=found, actor=request.user, username=body.validated_data["username"], role=body.validated_data["role"]
        )
        return Response(MemberOut(membership).data)


class MemberDetailApi(APIView):
    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, team: str, username: str) -> Response:
        found = team_get_for_user(user=request.user, team=team)
        services.member_remove(team=found, actor=request.user, username=username)
        return Response(status=204)
