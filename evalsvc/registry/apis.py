from __future__ import annotations

import json
from contextlib import ExitStack

from django.db import transaction
from django.http import FileResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalsvc.core.apis import TEAM_PARAM, page_of, paginated, validated
from evalsvc.core.users import signed_in_user
from evalsvc.teams.selectors import team_get_for_user

from . import curation, selectors, services
from .deferred import require_ready
from .models import ArtifactStatus, DatasetVersion, ModelVersion, RegisteredModel
from .same_model import model_version_same_model_update, same_model_target
from .storage import blob_open
from .uploads import upload_digest, uploaded_file_path


class ModelVersionOut(serializers.ModelSerializer):
    model = serializers.UUIDField(source="registered_model_id", help_text="The model: PATCH /api/models/{id}/.")
    name = serializers.CharField(source="registered_model.name")
    team = serializers.CharField(source="team.slug")
    created_by = serializers.CharField(source="created_by.username")

    class Meta:
        model = ModelVersion
        fields = [
            "id", "team", "model", "name", "version", "format", "sha256", "size_bytes", "original_filename",
            "inputs", "outputs", "opset", "ir_version", "producer_name", "producer_version",
            "class_labels", "feature_names", "feature_names_source", "weights_sha256", "weights_size_bytes", "tokenizer_sha256", "processing",
            "parent", "variant", "same_model_as", "notes", "created_by", "created_at", "status", "status_message",
        ]  # fmt: skip


class _UploadIn(serializers.Serializer):
    team = serializers.CharField(help_text="Team slug or id.")
    name = serializers.CharField(max_length=200)
    file = serializers.FileField(allow_empty_file=True)
    notes = serializers.CharField(required=False, allow_blank=True, default="")


class ModelVersionIn(_UploadIn):
    format = serializers.CharField(
        required=False,
        help_text="onnx, torchscript, torch_export, openvino or tflite; inferred from the file name "
        "(.onnx, .pt, .pt2, .xml, .tflite) when left out.",
    )
    weights = serializers.FileField(required=False, allow_empty_file=True, help_text="OpenVINO IR: the .bin file.")
    tokenizer = serializers.FileField(required=False, allow_empty_file=True, help_text="Text models: tokenizer.json.")
    processing = serializers.JSONField(
        required=False, help_text="Declared pre/post-processing spec (JSON object; in multipart, a JSON string)."
    )

    feature_names = serializers.JSONField(
        required=False,
        help_text="The data columns the model's input takes, in order (JSON list; in multipart, a JSON string). "
        "Jobs match data columns to them by name.",
    )
    same_model_as = serializers.UUIDField(
        required=False, help_text="A version of this team that this file is the same model as (another format)."
    )

    def validate_processing(self, value: object) -> object:
        if isinstance(value, str):  # multipart sends it as text
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise serializers.ValidationError(f"not valid JSON: {exc}") from None
        if value is not None and not isinstance(value, dict):
            raise serializers.ValidationError("must be a JSON object")
        return value

    def validate_feature_names(self, value: object) -> object:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise serializers.ValidationError(f"not valid JSON: {exc}") from None
        if not isinstance(value, list):
            raise serializers.ValidationError("must be a JSON list of column names")
        return value


class ModelVersionFeaturesIn(serializers.Serializer):
    feature_names = serializers.ListField(child=serializers.CharField(), allow_empty=False, required=False)
    same_model_as = serializers.UUIDField(
        required=False, allow_null=True, help_text="The version this one is the same model as; null drops the link."
    )

    def validate(self, attrs: dict) -> dict:
        if not attrs:
            raise serializers.ValidationError("give feature_names or same_model_as")
        return attrs


class DatasetVersionOut(serializers.ModelSerializer):
    name = serializers.CharField(source="dataset.name")
    team = serializers.CharField(source="team.slug")
    created_by = serializers.CharField(source="created_by.username")

    class Meta:
        model = DatasetVersion
        fields = [
            "id", "team", "name", "version", "format", "sha256", "size_bytes", "original_filename",
            "rows", "columns", "label_column", "notes", "created_by", "created_at", "status", "status_message",
        ]  # fmt: skip


class DatasetVersionIn(_UploadIn):
    format = serializers.CharField(
        required=False, help_text="csv, parquet or imagefolder (a .zip of class folders); inferred from the file name."
    )
    label_column = serializers.CharField(required=False, allow_blank=True, default="")


_UPLOAD_DOC = (
    "Files up to EVALSVC_INLINE_VALIDATION_MB are validated in the request (201, status ready). A larger one "
    "is stored and answered 202 with status validating; a worker then makes it ready or failed "
    "(status_message says why). All files of one request together may be at most EVALSVC_MAX_UPLOAD_MB: "
    "past it the upload is cut off while it arrives and answered 413."
)


def _created(out: serializers.Serializer, version: ModelVersion | DatasetVersion) -> Response:
    accepted = version.status == ArtifactStatus.VALIDATING
    if accepted:  # sent to a worker by now, or saying that it waits for the job queue
        version.refresh_from_db(fields=["status", "status_message"])
    return Response(out.data, status=status.HTTP_202_ACCEPTED if accepted else status.HTTP_201_CREATED)


def _download(version: ModelVersion | DatasetVersion) -> FileResponse:
    require_ready(version)
    key, filename, sha256 = version.storage_key, version.original_filename, version.sha256
    # The bytes as stored, whatever the file name suggests (as documented: application/octet-stream).
    response = FileResponse(
        blob_open(key), as_attachment=True, filename=filename or sha256, content_type="application/octet-stream"
    )
    response["X-Content-SHA256"] = sha256
    return response


class ModelVersionListApi(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(parameters=[TEAM_PARAM], responses=page_of(ModelVersionOut))
    def get(self, request: Request) -> Response:
        qs = selectors.model_versions_for_user(user=signed_in_user(request), team=request.query_params.get("team"))
        return paginated(self, request, qs, ModelVersionOut)

    @extend_schema(
        request=ModelVersionIn, responses={201: ModelVersionOut, 202: ModelVersionOut}, description=_UPLOAD_DOC
    )
    def post(self, request: Request) -> Response:
        data = validated(ModelVersionIn, request.data)
        team = team_get_for_user(user=signed_in_user(request), team=data["team"])
        upload = data["file"]
        same_model = None
        if data.get("same_model_as"):
            same_model = same_model_target(user=signed_in_user(request), team=team, target_id=data["same_model_as"])
        with ExitStack() as stack:
            path = stack.enter_context(uploaded_file_path(upload))
            weights = stack.enter_context(uploaded_file_path(data["weights"])) if data.get("weights") else None
            tokenizer = stack.enter_context(uploaded_file_path(data["tokenizer"])) if data.get("tokenizer") else None
            version = services.model_version_register(
                user=signed_in_user(request),
                team=team,
                name=data["name"],
                path=path,
                filename=upload.name,
                format=data.get("format"),
                notes=data.get("notes", ""),
                weights_path=weights,
                tokenizer_path=tokenizer,
                processing=data.get("processing"),
                feature_names=data.get("feature_names"),
                same_model_as=same_model,
                sha256=upload_digest(upload),
                defer_large=True,
            )
        return _created(ModelVersionOut(version), version)


class ModelVersionDetailApi(APIView):
    @extend_schema(responses=ModelVersionOut)
    def get(self, request: Request, pk: str) -> Response:
        return Response(ModelVersionOut(selectors.model_version_get(user=signed_in_user(request), pk=pk)).data)

    @extend_schema(
        request=ModelVersionFeaturesIn,
        responses=ModelVersionOut,
        description="Declare or correct the feature columns (owners and editors; audited).",
    )
    def patch(self, request: Request, pk: str) -> Response:
        data = validated(ModelVersionFeaturesIn, request.data)
        with transaction.atomic():
            if "feature_names" in data:
                curation.model_version_feature_names_update(
                    user=signed_in_user(request), version_id=pk, feature_names=data["feature_names"]
                )
            if "same_model_as" in data:
                model_version_same_model_update(
                    user=signed_in_user(request), version_id=pk, same_model_as=data["same_model_as"]
                )
        version = selectors.model_version_get(user=signed_in_user(request), pk=pk)
        return Response(ModelVersionOut(version).data)

    @extend_schema(responses={204: None}, description="Owners only; refused (409) while a report or run refers to it.")
    def delete(self, request: Request, pk: str) -> Response:
        curation.model_version_delete(user=signed_in_user(request), version_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ModelVersionDownloadApi(APIView):
    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request: Request, pk: str) -> FileResponse:
        version = selectors.model_version_get(user=signed_in_user(request), pk=pk)
        return _download(version)


class DatasetVersionListApi(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(parameters=[TEAM_PARAM], responses=page_of(DatasetVersionOut))
    def get(self, request: Request) -> Response:
        qs = selectors.dataset_versions_for_user(user=signed_in_user(request), team=request.query_params.get("team"))
        return paginated(self, request, qs, DatasetVersionOut)

    @extend_schema(
        request=DatasetVersionIn, responses={201: DatasetVersionOut, 202: DatasetVersionOut}, description=_UPLOAD_DOC
    )
    def post(self, request: Request) -> Response:
        data = validated(DatasetVersionIn, request.data)
        team = team_get_for_user(user=signed_in_user(request), team=data["team"])
        upload = data["file"]
        with uploaded_file_path(upload) as path:
            version = services.dataset_version_register(
                user=signed_in_user(request),
                team=team,
                name=data["name"],
                path=path,
                filename=upload.name,
                format=data.get("format"),
                label_column=data.get("label_column", ""),
                notes=data.get("notes", ""),
                sha256=upload_digest(upload),
                defer_large=True,
            )
        return _created(DatasetVersionOut(version), version)


class DatasetVersionDetailApi(APIView):
    @extend_schema(responses=DatasetVersionOut)
    def get(self, request: Request, pk: str) -> Response:
        return Response(DatasetVersionOut(selectors.dataset_version_get(user=signed_in_user(request), pk=pk)).data)

    @extend_schema(responses={204: None}, description="Owners only; refused (409) while a report or run refers to it.")
    def delete(self, request: Request, pk: str) -> Response:
        curation.dataset_version_delete(user=signed_in_user(request), version_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DatasetVersionDownloadApi(APIView):
    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request: Request, pk: str) -> FileResponse:
        version = selectors.dataset_version_get(user=signed_in_user(request), pk=pk)
        return _download(version)


class RegisteredModelOut(serializers.ModelSerializer):
    team = serializers.CharField(source="team.slug")
    versions = serializers.SerializerMethodField()

    class Meta:
        model = RegisteredModel
        fields = ["id", "team", "name", "description", "intended_use", "limitations", "versions", "created_at"]

    def get_versions(self, model: RegisteredModel) -> list[dict]:
        return [{"id": str(pk), "version": v} for pk, v in model.versions.values_list("pk", "version")]


class RegisteredModelIn(serializers.Serializer):
    description = serializers.CharField(required=False, allow_blank=True)
    intended_use = serializers.CharField(required=False, allow_blank=True, help_text="Shown in audit reports.")
    limitations = serializers.CharField(required=False, allow_blank=True, help_text="Known limitations, in reports.")


class RegisteredModelDetailApi(APIView):
    """A model (all its versions): its description, intended use and known limitations."""

    @extend_schema(responses=RegisteredModelOut)
    def get(self, request: Request, pk: str) -> Response:
        return Response(RegisteredModelOut(curation.registered_model_get(user=signed_in_user(request), pk=pk)).data)

    @extend_schema(request=RegisteredModelIn, responses=RegisteredModelOut)
    def patch(self, request: Request, pk: str) -> Response:
        data = validated(RegisteredModelIn, request.data)
        model = curation.registered_model_update(user=signed_in_user(request), model_id=pk, **data)
        return Response(RegisteredModelOut(model).data)
