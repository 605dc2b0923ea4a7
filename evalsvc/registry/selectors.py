from __future__ import annotations

from django.db.models import QuerySet

from evalsvc.core.users import AnyUser
from evalsvc.teams.selectors import get_scoped, scope_to_user, team_get_for_user

from .models import Dataset, DatasetVersion, ModelVersion, RegisteredModel


def _filter_team(qs: QuerySet, *, user: AnyUser, team: str | None) -> QuerySet:
    qs = scope_to_user(qs, user=user)
    if team:
        qs = qs.filter(team=team_get_for_user(user=user, team=team))
    return qs


def registered_models_for_user(*, user: AnyUser, team: str | None = None) -> QuerySet[RegisteredModel]:
    return _filter_team(RegisteredModel.objects.select_related("team"), user=user, team=team)


def model_versions_for_user(*, user: AnyUser, team: str | None = None) -> QuerySet[ModelVersion]:
    qs = ModelVersion.objects.select_related("team", "registered_model", "created_by")
    return _filter_team(qs, user=user, team=team)


def model_version_get(*, user: AnyUser, pk: object) -> ModelVersion:
    qs = ModelVersion.objects.select_related("team", "registered_model", "created_by")
    return get_scoped(qs, user=user, pk=pk, what="model version")


def datasets_for_user(*, user: AnyUser, team: str | None = None) -> QuerySet[Dataset]:
    return _filter_team(Dataset.objects.select_related("team"), user=user, team=team)


def dataset_versions_for_user(*, user: AnyUser, team: str | None = None) -> QuerySet[DatasetVersion]:
    qs = DatasetVersion.objects.select_related("team", "dataset", "created_by")
    return _filter_team(qs, user=user, team=team)


def dataset_version_get(*, user: AnyUser, pk: object) -> DatasetVersion:
    qs = DatasetVersion.objects.select_related("team", "dataset", "created_by")
    return get_scoped(qs, user=user, pk=pk, what="data set version")
