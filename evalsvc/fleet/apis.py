from __future__ import annotations

from dataclasses import asdict

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .selectors import backends_overview, live_workers, offers


class BackendListApi(APIView):
    """The backends and devices running workers offer now, and why a backend is missing where it is."""

    @extend_schema(
        responses=inline_serializer(
            "BackendsOverview",
            {
                "offers": serializers.ListField(child=serializers.DictField()),
                "backends": serializers.ListField(child=serializers.DictField()),
                "workers": serializers.ListField(child=serializers.DictField()),
            },
        )
    )
    def get(self, request: Request) -> Response:
        workers = [
            {
                "hostname": w.hostname,
                "queues": w.queues,
                "started_at": w.started_at,
                "last_seen": w.last_seen,
                "host": w.host,
            }
            for w in live_workers()
        ]
        return Response({"offers": [asdict(o) for o in offers()], "backends": backends_overview(), "workers": workers})
