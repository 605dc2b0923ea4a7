from __future__ import annotations

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalsvc.core.apis import page_of, paginated
from evalsvc.core.exceptions import ValidationFailed
from evalsvc.core.users import signed_in_user
from evalsvc.teams.models import Team

from . import selectors
from .models import AuditEntry
from .services import audit_verify

FILTERS = [
    OpenApiParameter("team", str, description="Team slug or id; default: every team you own or audit."),
    OpenApiParameter("action", str, description='Exact action, or a prefix ending in "." or "*" (e.g. "report.").'),
    OpenApiParameter("actor", str, description="Username of who acted."),
    OpenApiParameter("object_id", str, description="Id of the object acted on."),
    OpenApiParameter("since", str, description="Date (YYYY-MM-DD) or ISO 8601 date-time, inclusive."),
    OpenApiParameter("until", str, description="Date (the whole day) or ISO 8601 date-time, inclusive."),
]


class AuditEntryOut(serializers.ModelSerializer):
    team: serializers.SlugRelatedField[Team] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    actor = serializers.CharField(source="actor_label")

    class Meta:
        model = AuditEntry
        fields = [
            "seq", "created_at", "team", "actor", "action", "object_type", "object_id", "details", "prev_hash", "hash",
        ]  # fmt: skip


def _filtered(request: Request):
    params = request.query_params
    return selectors.audit_entries_for_user(
        user=signed_in_user(request),
        team=params.get("team") or None,
        action=params.get("action") or None,
        actor=params.get("actor") or None,
        object_id=params.get("object_id") or None,
        since=params.get("since") or None,
        until=params.get("until") or None,
    )


class AuditListApi(APIView):
    """The audit trail, newest first: owners and auditors of a team read its entries."""

    @extend_schema(parameters=FILTERS, responses=page_of(AuditEntryOut))
    def get(self, request: Request) -> Response:
        return paginated(self, request, _filtered(request), AuditEntryOut)


class AuditSignInListApi(APIView):
    """Your own sign-ins and failed sign-in attempts on your account (times, addresses), newest first."""

    @extend_schema(responses=page_of(AuditEntryOut))
    def get(self, request: Request) -> Response:
        return paginated(self, request, selectors.audit_sign_ins_for_user(user=signed_in_user(request)), AuditEntryOut)


class AuditExportApi(APIView):
    """The filtered trail as CSV; cells a spreadsheet would run as formulas are quoted."""

    @extend_schema(parameters=FILTERS, responses={(200, "text/csv"): OpenApiResponse(description="CSV")})
    def get(self, request: Request) -> StreamingHttpResponse:
        entries = _filtered(request)
        response = StreamingHttpResponse(selectors.audit_csv_lines(entries), content_type="text/csv; charset=utf-8")
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="evalsvc-audit-{stamp}.csv"'
        return response


VerifyOut = inline_serializer(
    "AuditVerifyOut",
    {
        "ok": serializers.BooleanField(),
        "checked": serializers.IntegerField(),
        "first_broken_seq": serializers.IntegerField(allow_null=True),
        "reason": serializers.CharField(),
        "head_seq": serializers.IntegerField(allow_null=True),
        "head_hash": serializers.CharField(allow_null=True),
        "team_entries": serializers.IntegerField(allow_null=True),
    },
)


class AuditVerifyApi(APIView):
    """Walk the hash chain and name the first broken entry (owners and auditors; `team` required)."""

    @extend_schema(parameters=[FILTERS[0]], responses=VerifyOut)
    def get(self, request: Request) -> Response:
        slug = request.query_params.get("team")
        if slug:
            team = selectors.audit_team_for_user(user=signed_in_user(request), team=slug)
        elif signed_in_user(request).is_superuser:
            team = None
        else:
            raise ValidationFailed("say which team's trail to check: ?team=<slug>")
        return Response(audit_verify(team=team).to_dict())
