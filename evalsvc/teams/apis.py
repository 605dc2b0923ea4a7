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

from .models import Membership, Team
from .selectors import teams_for_user


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
