from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from evalsvc.teams.selectors import get_scoped, scope_to_user, team_get_for_user
from workers.engine.types import DatasetRef, ModelSpec

from .models import Dataset, DatasetVersion, ModelVersion, RegisteredModel
from .storage import blob_local_path


def _filter_team(qs: QuerySet, *, user: Any, team: str | None) -> QuerySet:
    qs = scope_to_user(qs, user=user)
    if team:
        qs = qs.filter(team=team_get_for_user(user=user, team=team))
    return qs


def registered_models_for_user(*, user: Any, team: str | None = None) -> QuerySet[RegisteredModel]:
    return _filter_team(RegisteredModel.objects.select_related("team"), user=user, team=team)


def model_versions_for_user(*, user: Any, team: str | None = None) -> QuerySet[ModelVersion]:
    qs = ModelVersion.objects.select_related("team", "registered_model", "created_by")
    return _filter_team(qs, user=user, team=team)


def model_version_get(*, user: Any, pk: object) -> ModelVersion:
    qs = ModelVersion.objects.select_related("team", "registered_model", "created_by")
    return get_scoped(qs, user=user, pk=pk, what="model version")


def datasets_for_user(*, user: Any, team: str | None = None) -> QuerySet[Dataset]:
    return _filter_team(Dataset.objects.select_related("team"), user=user, team=team)


def dataset_versions_for_user(*, user: Any, team: str | None = None) -> QuerySet[DatasetVersion]:
    qs = DatasetVersion.objects.select_related("team", "dataset", "created_by")
    return _filter_team(qs, user=user, team=team)


def dataset_version_get(*, user: Any, pk: object) -> DatasetVersion:
    qs = DatasetVersion.objects.select_related("team", "dataset", "created_by")
    return get_scoped(qs, user=user, pk=pk, what="data set version")


def model_spec(version: ModelVersion) -> ModelSpec:
    """The engine's view of a stored model version (a local file; fetched from S3 if need be)."""
    path = blob_local_path(key=version.storage_key, sha256=version.sha256)
    weights = (
        blob_local_path(key=version.weights_storage_key, sha256=version.weights_sha256)
        if version.weights_storage_key
        else None
    )
    return ModelSpec(path=path, format=version.format, sha256=version.sha256, weights_path=weights)


def tokenizer_path(version: ModelVersion) -> str | None:
    if not version.tokenizer_storage_key:
        return None
    return blob_local_path(key=version.tokenizer_storage_key, sha256=version.tokenizer_sha256)


def dataset_ref(version: DatasetVersion, *, label_column: str | None = None) -> DatasetRef:
    path = blob_local_path(key=version.storage_key, sha256=version.sha256)
    return DatasetRef(
        path=path,
        format=version.format,
        sha256=version.sha256,
        columns=tuple(version.column_names),
        label_column=label_column or version.label_column or None,
        rows=version.rows,
    )
