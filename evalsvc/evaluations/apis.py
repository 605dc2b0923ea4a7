from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalsvc.core.apis import TEAM_PARAM, page_of, paginated, validated
from evalsvc.core.users import signed_in_user

from . import selectors, services
from .models import EvaluationRun, RunStatus


class RunSummaryOut(serializers.ModelSerializer):
    """A run as lists show it: what, on what, how far, and its headline; never its stored result."""

    team = serializers.CharField(source="team.slug")
    model_version = serializers.UUIDField(source="model_version_id")
    model_name = serializers.CharField(source="model_version.registered_model.name")
    model_version_number = serializers.IntegerField(source="model_version.version")
    dataset_version = serializers.UUIDField(source="dataset_version_id", allow_null=True)
    created_by = serializers.CharField(source="created_by.username")
    headline = serializers.CharField(
        help_text="One line on how it went (e.g. 'accuracy 0.9561'); empty until there is a result."
    )

    class Meta:
        model = EvaluationRun
        fields = [
            "id", "team", "kind", "status", "model_version", "model_name", "model_version_number",
            "dataset_version", "progress", "progress_message", "error", "headline", "queue", "attempts", "worker",
            "created_by", "created_at", "started_at", "finished_at",
        ]  # fmt: skip


class RunOut(RunSummaryOut):
    """A run in full: its parameters, stored result and where it ran."""

    class Meta(RunSummaryOut.Meta):
        fields = [*RunSummaryOut.Meta.fields, "params", "result", "environment"]


class RunIn(serializers.Serializer):
    kind = serializers.CharField(default="evaluate")
    model_version = serializers.CharField()
    dataset_version = serializers.CharField(required=False, allow_null=True)
    params = serializers.JSONField(required=False, default=dict)


class RunListApi(APIView):
    @extend_schema(
        parameters=[TEAM_PARAM, OpenApiParameter("status", str, enum=RunStatus.values)],
        responses=page_of(RunSummaryOut),
        description="Summaries, newest first: the full result of a run is `GET /api/runs/{id}/`.",
    )
    def get(self, request: Request) -> Response:
        qs = selectors.runs_for_user(
            user=signed_in_user(request),
            team=request.query_params.get("team"),
            status=request.query_params.get("status"),
        )
        return paginated(self, request, qs.order_by("-created_at", "-id"), RunSummaryOut)

    @extend_schema(request=RunIn, responses={201: RunOut})
    def post(self, request: Request) -> Response:
        data = validated(RunIn, request.data)
        run = services.run_submit(
            user=signed_in_user(request),
            model_version_id=data["model_version"],
            dataset_version_id=data.get("dataset_version"),
            kind=data["kind"],
            params=data.get("params") or {},
        )
        run.refresh_from_db()  # sent to the job queue by now, or saying that it waits for it
        return Response(RunOut(run).data, status=status.HTTP_201_CREATED)


class RunDetailApi(APIView):
    @extend_schema(responses=RunOut, description="The run in full: parameters, stored result and environment.")
    def get(self, request: Request, pk: str) -> Response:
        return Response(RunOut(selectors.run_get(user=signed_in_user(request), pk=pk)).data)


class RunCancelApi(APIView):
    @extend_schema(request=None, responses=RunOut)
    def post(self, request: Request, pk: str) -> Response:
        return Response(RunOut(services.run_cancel(user=signed_in_user(request), run_id=pk)).data)
