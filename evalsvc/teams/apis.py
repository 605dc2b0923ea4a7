from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalsvc.audit.services import audit_record

from . import services
from .models import Membership, Role, Team
from .selectors import team_get_for_user, teams_for_user


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
    """Exchange a username and password for the user's API token (send it as `Authorization: Token …`)."""

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().post(request, *args, **kwargs)  # a bad password raises before this line
        user = Token.objects.select_related("user").get(key=response.data["token"]).user
        details = {"via": "api token", "ip": request.META.get("REMOTE_ADDR", "")}
        audit_record(actor=user, team=None, action="user.signed_in", obj=user, details=details)
        return response


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
