from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from evalsvc.teams.selectors import get_scoped, scope_to_user, team_get_for_user

from .models import EvaluationRun


def runs_for_user(*, user: Any, team: str | None = None, status: str | None = None) -> QuerySet[EvaluationRun]:
    qs = scope_to_user(
        EvaluationRun.objects.select_related("team", "model_version__registered_model", "dataset_version__dataset"),
        user=user,
    )
    if team:
        qs = qs.filter(team=team_get_for_user(user=user, team=team))
    if status:
        qs = qs.filter(status=status)
    return qs


def run_get(*, user: Any, pk: object) -> EvaluationRun:
    qs = EvaluationRun.objects.select_related("team", "model_version__registered_model", "dataset_version__dataset")
    return get_scoped(qs, user=user, pk=pk, what="run")
