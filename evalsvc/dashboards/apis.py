"""Downloads of a run's stored result: JSON as stored, CSV where the kind has a table."""

from __future__ import annotations

import csv
import io
import json

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from evalsvc.core.csvcells import csv_safe
from evalsvc.core.exceptions import Conflict, NotFound
from evalsvc.evaluations.kinds import get_kind
from evalsvc.evaluations.selectors import run_get


class RunResultDownloadApi(APIView):
    @extend_schema(responses={(200, "text/csv"): OpenApiResponse(description="the result table")})
    def get(self, request: Request, pk: str, fmt: str) -> HttpResponse:
        run = run_get(user=request.user, pk=pk)
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
