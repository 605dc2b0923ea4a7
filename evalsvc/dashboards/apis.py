"""Downloads of a run's stored result (JSON as stored, CSV where the kind has a table), and runs compared."""

from __future__ import annotations

import csv
import io
import json

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalsvc.core.csvcells import csv_safe
from evalsvc.core.exceptions import Conflict, NotFound
from evalsvc.core.schema import ErrorOut
from evalsvc.core.users import signed_in_user
from evalsvc.evaluations.kinds import get_kind
from evalsvc.evaluations.selectors import MAX_COMPARED_RUNS, run_get, runs_for_comparison

from .compare import compared_ids, comparison_of


class RunResultDownloadApi(APIView):
    @extend_schema(
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="result.csv: the result table"),
            (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description="result.json: as stored"),
            409: OpenApiResponse(ErrorOut, description="The run has no result yet."),
        }
    )
    def get(self, request: Request, pk: str, fmt: str) -> HttpResponse:
        run = run_get(user=signed_in_user(request), pk=pk)
        if fmt not in ("json", "csv"):
            raise NotFound(f"results download as .json or .csv, not .{fmt}")
        if run.result is None:
            raise Conflict(f"the run has no result yet: it is {run.status}")
        filename = f"{run.kind}-{str(run.pk)[:8]}"
        if fmt == "json":
            response = HttpResponse(json.dumps(run.result, indent=2), content_type="application/json")
        else:
            table = get_kind(run.kind).csv_rows
            if table is None:
                raise NotFound(f"{run.kind} results have no CSV table; download the JSON")
            rows = table(run.result)
            buf = io.StringIO()
            writer = csv.writer(buf)
            if rows:
                writer.writerow(list(rows[0]))
                writer.writerows([[csv_safe(v) for v in row.values()] for row in rows])
            response = HttpResponse(buf.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
        return response


class _CompareRunOut(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField(help_text="Model version and the start of the run's id, as columns and legends say.")
    model_version = serializers.UUIDField()
    dataset_version = serializers.UUIDField(allow_null=True)
    created_at = serializers.DateTimeField()
    params = serializers.JSONField()


class _CompareMetricOut(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # the field, not Field.label
    better = serializers.CharField(allow_null=True, help_text='"higher", "lower", or null: no direction is better.')
    values = serializers.ListField(child=serializers.JSONField(allow_null=True), help_text="One per run, in order.")
    deltas = serializers.ListField(
        child=serializers.FloatField(allow_null=True), help_text="Each value minus the first run's (null: first)."
    )
    states = serializers.ListField(
        child=serializers.CharField(), help_text="baseline, same, better, worse or changed, per run."
    )


class _CompareParamOut(serializers.Serializer):
    name = serializers.CharField()
    values = serializers.ListField(child=serializers.CharField())
    differs = serializers.BooleanField()


class _CompareFigureOut(serializers.Serializer):
    title = serializers.CharField()
    figure = serializers.JSONField(help_text="A plotly figure (data and layout).")


class RunCompareOut(serializers.Serializer):
    kind = serializers.CharField()
    runs = _CompareRunOut(many=True)
    metrics = _CompareMetricOut(many=True)
    params = _CompareParamOut(many=True)
    figures = _CompareFigureOut(many=True)
    notes = serializers.ListField(child=serializers.CharField())


class RunCompareApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "ids",
                str,
                required=True,
                description=f"Run ids, comma-separated (2 to {MAX_COMPARED_RUNS}, one kind); the first is the baseline.",
            )
        ],
        responses=RunCompareOut,
    )
    def get(self, request: Request) -> Response:
        runs = runs_for_comparison(user=signed_in_user(request), ids=compared_ids(request.query_params.getlist("ids")))
        found = comparison_of(runs)
        body = {
            "kind": found["kind"].name,
            "runs": [
                {
                    "id": run.pk,
                    "name": name,
                    "model_version": run.model_version_id,
                    "dataset_version": run.dataset_version_id,
                    "created_at": run.created_at,
                    "params": run.params,
                }
                for run, name in zip(runs, found["names"], strict=True)
            ],
            "metrics": [
                {
                    "key": row["key"],
                    "label": row["label"],
                    "better": row["better"],
                    "values": [c["value"] for c in row["cells"]],
                    "deltas": [c["delta"] for c in row["cells"]],
                    "states": [c["state"] for c in row["cells"]],
                }
                for row in found["metrics"]
            ],
            "params": found["params"],
            "figures": [{"title": title, "figure": json.loads(fig.to_json())} for title, fig in found["figures"]],
            "notes": found["notes"],
        }
        return Response(RunCompareOut(body).data)
