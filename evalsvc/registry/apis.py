from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from evalsvc.teams.selectors import team_get_for_user

from . import selectors, services
from .models import DatasetVersion, ModelVersion
from .storage import blob_open
from .uploads import uploaded_file_path

TEAM_PARAM = OpenApiParameter("team", str, description="Only objects of this team (slug or id).")


class ModelVersionOut(serializers.ModelSerializer):
    name = serializers.CharField(source="registered_model.name")
    team = serializers.CharField(source="team.slug")
    created_by = serializers.CharField(source="created_by.username")

    class Meta:
        model = ModelVersion
        fields = [
            "id", "team", "name", "version", "format", "sha256", "size_bytes", "original_filename",
            "inputs", "outputs", "opset", "ir_version", "producer_name", "producer_version",
            "class_labels", "notes", "created_by", "created_at",
        ]  # fmt: skip


class ModelVersionIn(serializers.Serializer):
    team = serializers.CharField(help_text="Team slug or id.")
    name = serializers.CharField(max_length=200)
    file = serializers.FileField(allow_empty_file=True)
    format = serializers.CharField(required=False, help_text="onnx; inferred from the file name when left out.")
    notes = serializers.CharField(required=False, allow_blank=True, default="")


class DatasetVersionOut(serializers.ModelSerializer):
    name = serializers.CharField(source="dataset.name")
    team = serializers.CharField(source="team.slug")
    created_by = serializers.CharField(source="created_by.username")

    class Meta:
        model = DatasetVersion
        fields = [
            "id", "team", "name", "version", "format", "sha256", "size_bytes", "original_filename",
            "rows", "columns", "label_column", "notes", "created_by", "created_at",
        ]  # fmt: skip


class DatasetVersionIn(ModelVersionIn):
    format = serializers.CharField(required=False, help_text="csv or parquet; inferred from the file name.")
    label_column = serializers.CharField(required=False, allow_blank=True, default="")


def _paginated(view: APIView, request: Request, queryset, serializer_class) -> Response:
    paginator = api_settings.DEFAULT_PAGINATION_CLASS()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


def _validated(serializer_class: type[serializers.Serializer], data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _download(key: str, filename: str, sha256: str) -> FileResponse:
    response = FileResponse(blob_open(key), as_attachment=True, filename=filename or sha256)
    response["X-Content-SHA256"] = sha256
    return response


class ModelVersionListApi(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(parameters=[TEAM_PARAM], responses=ModelVersionOut(many=True))
    def get(self, request: Request) -> Response:
        qs = selectors.model_versions_for_user(user=request.user, team=request.query_params.get("team"))
        return _paginated(self, request, qs, ModelVersionOut)

    @extend_schema(request=ModelVersionIn, responses={201: ModelVersionOut})
    def post(self, request: Request) -> Response:
        data = _validated(ModelVersionIn, request.data)
        team = team_get_for_user(user=request.user, team=data["team"])
        upload = data["file"]
        with uploaded_file_path(upload) as path:
            version = services.model_version_register(
                user=request.user,
                team=team,
                name=data["name"],
                path=path,
                filename=upload.name,
                format=data.get("format"),
                notes=data.get("notes", ""),
            )
        return Response(ModelVersionOut(version).data, status=status.HTTP_201_CREATED)


class ModelVersionDetailApi(APIView):
    @extend_schema(responses=ModelVersionOut)
    def get(self, request: Request, pk: str) -> Response:
        return Response(ModelVersionOut(selectors.model_version_get(user=request.user, pk=pk)).data)


class ModelVersionDownloadApi(APIView):
    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request: Request, pk: str) -> FileResponse:
        version = selectors.model_version_get(user=request.user, pk=pk)
        return _download(version.storage_key, version.original_filename, version.sha256)


class DatasetVersionListApi(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(parameters=[TEAM_PARAM], responses=DatasetVersionOut(many=True))
    def get(self, request: Request) -> Response:
        qs = selectors.dataset_versions_for_user(user=request.user, team=request.query_params.get("team"))
        return _paginated(self, request, qs, DatasetVersionOut)

    @extend_schema(request=DatasetVersionIn, responses={201: DatasetVersionOut})
    def post(self, request: Request) -> Response:
        data = _validated(DatasetVersionIn, request.data)
        team = team_get_for_user(user=request.user, team=data["team"])
        upload = data["file"]
        with uploaded_file_path(upload) as path:
            version = services.dataset_version_register(
                user=request.user,
                team=team,
                name=data["name"],
                path=path,
                filename=upload.name,
                format=data.get("format"),
                label_column=data.get("label_column", ""),
                notes=data.get("notes", ""),
            )
        return Response(DatasetVersionOut(version).data, status=status.HTTP_201_CREATED)


class DatasetVersionDetailApi(APIView):
    @extend_schema(responses=DatasetVersionOut)
    def get(self, request: Request, pk: str) -> Response:
        return Response(DatasetVersionOut(selectors.dataset_version_get(user=request.user, pk=pk)).data)


class DatasetVersionDownloadApi(APIView):
    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request: Request, pk: str) -> FileResponse:
        version = selectors.dataset_version_get(user=request.user, pk=pk)
        return _download(version.storage_key, version.original_filename, version.sha256)
