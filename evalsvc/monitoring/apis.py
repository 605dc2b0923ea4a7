"""The monitors API: monitors, production batches, checks, alerts."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalsvc.core.apis import TEAM_PARAM, page_of, paginated, validated
from evalsvc.core.exceptions import ValidationFailed
from evalsvc.core.users import signed_in_user

from . import selectors, services
from .models import Alert, Monitor, MonitorCheck, ProductionBatch, ProductionLabels


class MonitorOut(serializers.ModelSerializer):
    team = serializers.CharField(source="team.slug")
    model_version = serializers.UUIDField(source="model_version_id")
    reference_dataset = serializers.UUIDField(source="reference_dataset_id")
    created_by = serializers.CharField(source="created_by.username")
    # A plain string in the schema: "" (no webhook) would match both arms of the URL-or-empty choice.
    webhook_url = serializers.CharField(help_text="Where alerts are posted, or empty for none.")

    class Meta:
        model = Monitor
        fields = [
            "id", "team", "name", "model_version", "reference_dataset", "columns", "detectors", "window_hours",
            "schedule", "webhook_url", "email_to", "row_id_column", "task", "enabled", "profile_status", "profile_error", "profile_updated_at", "created_by",
            "created_at",
        ]  # fmt: skip


class MonitorCreatedOut(MonitorOut):
    class Meta(MonitorOut.Meta):
        fields = [*MonitorOut.Meta.fields, "webhook_secret"]


class MonitorIn(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    model_version = serializers.CharField()
    reference_dataset = serializers.CharField()
    columns = serializers.ListField(child=serializers.CharField(), required=False, allow_empty=False)
    detectors = serializers.DictField(required=False)
    window_hours = serializers.IntegerField(min_value=1, max_value=24 * 366, default=24)
    schedule = serializers.CharField(help_text="Cron: minute hour day-of-month month day-of-week, e.g. '0 * * * *'.")
    webhook_url = serializers.CharField(required=False, allow_blank=True, max_length=500)
    email_to = serializers.ListField(child=serializers.EmailField(), required=False)
    row_id_column = serializers.CharField(
        required=False, allow_blank=True, max_length=200,
        help_text="A column every batch carries that names its rows, so labels can be sent later by row id.",
    )  # fmt: skip
    task = serializers.ChoiceField(
        choices=["classification", "regression"], required=False, help_text="Default: inferred from the model."
    )
    enabled = serializers.BooleanField(default=True)


class MonitorPatch(serializers.Serializer):
    reference_dataset = serializers.CharField(
        required=False, help_text="Another reference (a newer version, say) carrying the monitor's columns."
    )
    detectors = serializers.DictField(required=False)
    window_hours = serializers.IntegerField(min_value=1, max_value=24 * 366, required=False)
    schedule = serializers.CharField(required=False)
    webhook_url = serializers.CharField(required=False, allow_blank=True, max_length=500)
    email_to = serializers.ListField(child=serializers.EmailField(), required=False)
    enabled = serializers.BooleanField(required=False)


class BatchOut(serializers.ModelSerializer):
    received_by = serializers.CharField(source="received_by.username")

    class Meta:
        model = ProductionBatch
        fields = ["id", "rows", "size_bytes", "sha256", "received_by", "created_at"]


class LabelsOut(serializers.ModelSerializer):
    batch = serializers.UUIDField(source="batch_id", allow_null=True)
    received_by = serializers.CharField(source="received_by.username")

    class Meta:
        model = ProductionLabels
        fields = ["id", "batch", "rows", "received_by", "created_at"]


class LabelsIn(serializers.Serializer):
    labels = serializers.ListField(help_text="The true labels (classes, or numbers for a regressor).")
    batch = serializers.CharField(required=False, help_text="A batch's id: one label per row, in its row order.")
    row_ids = serializers.ListField(required=False, help_text="Or: the rows' ids (the monitor's row_id_column).")


class CheckSummaryOut(serializers.ModelSerializer):
    """A check as its list shows it: when, on how many rows, whether it found drift; not its report."""

    class Meta:
        model = MonitorCheck
        fields = [
            "id", "trigger", "status", "window_start", "window_end", "rows", "drift", "error", "created_at",
            "finished_at",
        ]  # fmt: skip


class CheckOut(CheckSummaryOut):
    """A check in full, with its drift report (per column: test, statistic, p-value, effect size)."""

    class Meta(CheckSummaryOut.Meta):
        fields = [*CheckSummaryOut.Meta.fields, "result"]


class AlertOut(serializers.ModelSerializer):
    check = serializers.UUIDField(source="check_run_id")

    class Meta:
        model = Alert
        fields = ["id", "check", "channel", "target", "status", "attempts", "last_error", "payload", "created_at",
                  "sent_at"]  # fmt: skip


class MonitorListApi(APIView):
    @extend_schema(parameters=[TEAM_PARAM], responses=page_of(MonitorOut))
    def get(self, request: Request) -> Response:
        qs = selectors.monitors_for_user(user=signed_in_user(request), team=request.query_params.get("team"))
        return paginated(self, request, qs, MonitorOut)

    @extend_schema(request=MonitorIn, responses={201: MonitorCreatedOut})
    def post(self, request: Request) -> Response:
        data = validated(MonitorIn, request.data)
        monitor = services.monitor_create(user=signed_in_user(request), data=data, service_host=request.get_host())
        return Response(MonitorCreatedOut(monitor).data, status=status.HTTP_201_CREATED)


class MonitorDetailApi(APIView):
    @extend_schema(responses=MonitorOut)
    def get(self, request: Request, pk: str) -> Response:
        return Response(MonitorOut(selectors.monitor_get(user=signed_in_user(request), pk=pk)).data)

    @extend_schema(request=MonitorPatch, responses=MonitorOut)
    def patch(self, request: Request, pk: str) -> Response:
        data = validated(MonitorPatch, request.data)
        monitor = services.monitor_update(
            user=signed_in_user(request), pk=pk, data=data, service_host=request.get_host()
        )
        return Response(MonitorOut(monitor).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: str) -> Response:
        services.monitor_delete(user=signed_in_user(request), pk=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class BatchListApi(APIView):
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(responses=page_of(BatchOut))
    def get(self, request: Request, pk: str) -> Response:
        monitor = selectors.monitor_get(user=signed_in_user(request), pk=pk)
        return paginated(self, request, selectors.batches_for(monitor), BatchOut)

    @extend_schema(
        request={"application/json": {"type": "object"}, "multipart/form-data": {"type": "object"}},
        responses={201: BatchOut},
    )
    def post(self, request: Request, pk: str) -> Response:
        upload = request.FILES.get("file")
        if upload is not None:
            batch = services.batch_ingest(
                user=signed_in_user(request), pk=pk, file_name=upload.name, file_data=upload.read()
            )
        elif isinstance(request.data, dict) and "rows" in request.data:
            batch = services.batch_ingest(user=signed_in_user(request), pk=pk, rows=request.data["rows"])
        else:
            raise ValidationFailed("send {'rows': [...]} as JSON, or a CSV or Parquet file as multipart 'file'")
        return Response(BatchOut(batch).data, status=status.HTTP_201_CREATED)


class LabelListApi(APIView):
    @extend_schema(responses=page_of(LabelsOut))
    def get(self, request: Request, pk: str) -> Response:
        monitor = selectors.monitor_get(user=signed_in_user(request), pk=pk)
        return paginated(self, request, selectors.labels_for(monitor), LabelsOut)

    @extend_schema(request=LabelsIn, responses={201: LabelsOut})
    def post(self, request: Request, pk: str) -> Response:
        data = validated(LabelsIn, request.data)
        labels = services.labels_ingest(
            user=signed_in_user(request),
            pk=pk,
            labels=data["labels"],
            batch=data.get("batch"),
            row_ids=data.get("row_ids"),
        )
        return Response(LabelsOut(labels).data, status=status.HTTP_201_CREATED)


class CheckListApi(APIView):
    @extend_schema(
        responses=page_of(CheckSummaryOut),
        description="Summaries, newest first: a check's drift report is `GET /api/monitors/{id}/checks/{check}/`.",
    )
    def get(self, request: Request, pk: str) -> Response:
        monitor = selectors.monitor_get(user=signed_in_user(request), pk=pk)
        return paginated(self, request, selectors.checks_for(monitor).defer("result"), CheckSummaryOut)

    @extend_schema(request=None, responses={202: CheckOut})
    def post(self, request: Request, pk: str) -> Response:
        check = services.check_request(user=signed_in_user(request), pk=pk)
        return Response(CheckOut(check).data, status=status.HTTP_202_ACCEPTED)


class CheckDetailApi(APIView):
    @extend_schema(responses=CheckOut)
    def get(self, request: Request, pk: str, check: str) -> Response:
        monitor = selectors.monitor_get(user=signed_in_user(request), pk=pk)
        return Response(CheckOut(selectors.check_get(monitor=monitor, pk=check)).data)


class AlertListApi(APIView):
    @extend_schema(responses=page_of(AlertOut))
    def get(self, request: Request, pk: str) -> Response:
        monitor = selectors.monitor_get(user=signed_in_user(request), pk=pk)
        return paginated(self, request, selectors.alerts_for(monitor), AlertOut)
