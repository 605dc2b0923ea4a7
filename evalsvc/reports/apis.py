from __future__ import annotations

from typing import Any

from django.http import FileResponse, HttpResponse
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalsvc.core.apis import TEAM_PARAM, page_of, paginated, validated
from evalsvc.core.users import signed_in_user
from evalsvc.registry.storage import blob_open
from evalsvc.registry.uploads import uploaded_file_path
from evalsvc.teams.selectors import team_get_for_user

from . import selectors, services
from .models import Report, ReportPolicy

#: The stored HTML is shown from our origin: nothing in it may load or run anything.
HTML_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"


class MonitorPeriodIO(serializers.Serializer):
    monitor = serializers.CharField(help_text="A monitor of the report's model version.")
    start = serializers.DateTimeField(help_text="Checks run from this moment on …")
    end = serializers.DateTimeField(help_text="… and before this one.")


class ReportOut(serializers.ModelSerializer):
    team = serializers.CharField(source="team.slug")
    model_version = serializers.UUIDField(source="model_version_id")
    model_name = serializers.CharField(source="model_version.registered_model.name")
    model_version_number = serializers.IntegerField(source="model_version.version")
    runs = serializers.SerializerMethodField()
    monitors = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username")
    authors = serializers.SerializerMethodField(help_text="Who generated it or changed its content since (four eyes).")
    approved_by = serializers.CharField(source="approved_by.username", allow_null=True, default=None)
    supersedes = serializers.UUIDField(source="supersedes_id", allow_null=True)
    superseded_by = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta:
        model = Report
        fields = [
            "id", "team", "title", "version", "status", "model_version", "model_name", "model_version_number",
            "runs", "monitors", "sha256", "size_bytes", "created_by", "authors", "created_at", "approved_by",
            "approved_at", "approval_comment", "supersedes", "superseded_by", "links",
        ]  # fmt: skip

    # Read through .all(), so that a list's prefetched rows answer and a single report asks once.
    def get_runs(self, report: Report) -> list[str]:
        return [str(rr.run_id) for rr in sorted(report.report_runs.all(), key=lambda rr: rr.position)]

    @extend_schema_field(MonitorPeriodIO(many=True))
    def get_monitors(self, report: Report) -> list[dict[str, Any]]:
        return [
            {"monitor": str(rm.monitor_id), "start": rm.start.isoformat(), "end": rm.end.isoformat()}
            for rm in report.report_monitors.all()
        ]

    def get_authors(self, report: Report) -> list[str]:
        return report.author_names()

    def get_superseded_by(self, report: Report) -> list[str]:
        return [str(r.pk) for r in report.superseded_by.all()]

    def get_links(self, report: Report) -> dict[str, str]:
        base = f"/api/reports/{report.pk}"
        return {
            "pdf": f"{base}/pdf/",
            "html": f"{base}/html/",
            "json": f"{base}/json/",
            "page": f"/reports/{report.pk}/",
        }


class ReportIn(serializers.Serializer):
    model_version = serializers.CharField()
    runs = serializers.ListField(child=serializers.CharField(), allow_empty=False, help_text="Ids of the jobs.")
    title = serializers.CharField(required=False, allow_blank=True, max_length=300)
    monitors = serializers.ListField(
        child=MonitorPeriodIO(), required=False, help_text="Monitors' histories over a period each."
    )


class ReportEditIn(serializers.Serializer):
    runs = serializers.ListField(child=serializers.CharField(), allow_empty=False, required=False)
    title = serializers.CharField(required=False, allow_blank=True, max_length=300)
    monitors = serializers.ListField(child=MonitorPeriodIO(), required=False)


class ReportListApi(APIView):
    @extend_schema(
        parameters=[TEAM_PARAM, OpenApiParameter("model_version", str, description="Only this model version's.")],
        responses=page_of(ReportOut),
    )
    def get(self, request: Request) -> Response:
        qs = selectors.reports_for_user(
            user=signed_in_user(request),
            team=request.query_params.get("team"),
            model_version=request.query_params.get("model_version"),
        )
        return paginated(self, request, qs, ReportOut)

    @extend_schema(request=ReportIn, responses={201: ReportOut})
    def post(self, request: Request) -> Response:
        data = validated(ReportIn, request.data)
        report = services.report_generate(
            user=signed_in_user(request),
            model_version_id=data["model_version"],
            run_ids=data["runs"],
            title=data.get("title"),
            monitors=data.get("monitors"),
        )
        return Response(ReportOut(report).data, status=status.HTTP_201_CREATED)


class ReportDetailApi(APIView):
    """A report. Drafts can be edited (rendered again) or deleted; approved reports are immutable (409)."""

    @extend_schema(responses=ReportOut)
    def get(self, request: Request, pk: str) -> Response:
        return Response(ReportOut(selectors.report_get(user=signed_in_user(request), pk=pk)).data)

    @extend_schema(request=ReportEditIn, responses=ReportOut)
    def patch(self, request: Request, pk: str) -> Response:
        data = validated(ReportEditIn, request.data)
        report = services.report_update(
            user=signed_in_user(request), report_id=pk, title=data.get("title"), run_ids=data.get("runs"),
            monitors=data.get("monitors"),
        )  # fmt: skip
        return Response(ReportOut(report).data)

    @extend_schema(request=ReportEditIn, responses=ReportOut)
    def put(self, request: Request, pk: str) -> Response:
        return self.patch(request, pk)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: str) -> Response:
        services.report_delete(user=signed_in_user(request), report_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReportPdfApi(APIView):
    @extend_schema(responses={(200, "application/pdf"): OpenApiResponse(description="The PDF as issued")})
    def get(self, request: Request, pk: str) -> FileResponse:
        report = selectors.report_get(user=signed_in_user(request), pk=pk)
        response = FileResponse(
            blob_open(report.pdf_key),
            as_attachment=request.query_params.get("inline") is None,
            filename=f"evalsvc-report-{report.pk}-v{report.version}.pdf",
            content_type="application/pdf",
        )
        response["X-Content-SHA256"] = report.sha256
        return response


class ReportHtmlApi(APIView):
    @extend_schema(responses={(200, "text/html"): OpenApiResponse(description="The same report as HTML")})
    def get(self, request: Request, pk: str) -> HttpResponse:
        report = selectors.report_get(user=signed_in_user(request), pk=pk)
        response = HttpResponse(report.html, content_type="text/html; charset=utf-8")
        response["Content-Security-Policy"] = HTML_CSP
        if request.query_params.get("download") is not None:
            response["Content-Disposition"] = (
                f'attachment; filename="evalsvc-report-{report.pk}-v{report.version}.html"'
            )
        return response


class ReportJsonApi(APIView):
    @extend_schema(responses={200: OpenApiResponse(description="The report document (schema evalsvc.report/1)")})
    def get(self, request: Request, pk: str) -> Response:
        return Response(selectors.report_get(user=signed_in_user(request), pk=pk).document)


class ReportApproveIn(serializers.Serializer):
    comment = serializers.CharField(
        required=False, allow_blank=True, max_length=services.MAX_APPROVAL_COMMENT,
        help_text="Printed in the approved PDF with the approver's name and the date.",
    )  # fmt: skip


class ReportApproveApi(APIView):
    """Approve a report (team owners and auditors): the PDF is issued again with the approver, date and comment
    in it (its new SHA-256 is in the answer), and from then on it cannot change."""

    @extend_schema(request=ReportApproveIn, responses=ReportOut)
    def post(self, request: Request, pk: str) -> Response:
        data = validated(ReportApproveIn, request.data)
        report = services.report_approve(user=signed_in_user(request), report_id=pk, comment=data.get("comment"))
        return Response(ReportOut(report).data)


class ReportRegenerateApi(APIView):
    """Render the report again as its next version (same jobs unless `runs` is given); it supersedes this one."""

    @extend_schema(request=ReportEditIn, responses={201: ReportOut})
    def post(self, request: Request, pk: str) -> Response:
        data = validated(ReportEditIn, request.data)
        report = services.report_regenerate(
            user=signed_in_user(request), report_id=pk, title=data.get("title"), run_ids=data.get("runs")
        )
        return Response(ReportOut(report).data, status=status.HTTP_201_CREATED)


class VerifyIn(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True, help_text="The PDF to check.")


VerifyOut = inline_serializer(
    "ReportVerifyOut",
    {
        "issued": serializers.BooleanField(),
        "sha256": serializers.CharField(),
        "detail": serializers.CharField(),
        "report": serializers.UUIDField(required=False),
        "version": serializers.IntegerField(required=False),
        "approved": serializers.BooleanField(required=False),
        "claims_report": serializers.UUIDField(required=False),
    },
)


class ReportVerifyApi(APIView):
    """Is this PDF a report evalsvc issued, byte for byte? Which one, and was it approved?"""

    parser_classes = [MultiPartParser]

    @extend_schema(request=VerifyIn, responses=VerifyOut)
    def post(self, request: Request) -> Response:
        data = validated(VerifyIn, request.data)
        with uploaded_file_path(data["file"]) as path:
            return Response(selectors.report_verify(user=signed_in_user(request), path=path))


class PolicyIO(serializers.Serializer):
    thresholds = serializers.JSONField(
        help_text='Per metric a minimum and/or maximum, e.g. {"accuracy": {"min": 0.9}, "rmse": {"max": 60}}.'
    )
    allow_self_approval = serializers.BooleanField(
        required=False,
        help_text="Whether a report's author may approve it. Off by default: another owner or auditor must "
        "(four eyes). Left out of a PUT, the setting stays as it is.",
    )


class ReportPolicyApi(APIView):
    """The team's report policy (thresholds, who may approve): read by members, replaced by owners."""

    @extend_schema(responses=PolicyIO)
    def get(self, request: Request, team: str) -> Response:
        found = team_get_for_user(user=signed_in_user(request), team=team)
        return Response(
            {
                "team": found.slug,
                "thresholds": selectors.report_thresholds(team=found),
                "allow_self_approval": selectors.self_approval_allowed(team=found),
            }
        )

    @extend_schema(request=PolicyIO, responses=PolicyIO)
    def put(self, request: Request, team: str) -> Response:
        found = team_get_for_user(user=signed_in_user(request), team=team)
        data = validated(PolicyIO, request.data)
        policy: ReportPolicy = services.report_policy_set(
            user=signed_in_user(request),
            team=found,
            thresholds=data["thresholds"],
            allow_self_approval=data.get("allow_self_approval"),
        )
        return Response(
            {"team": found.slug, "thresholds": policy.thresholds, "allow_self_approval": policy.allow_self_approval}
        )


class ReportVerifySlashApi(ReportVerifyApi):
    """POST /api/reports/verify/ (with the slash): the same, left out of the schema."""

    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        return super().post(request)
