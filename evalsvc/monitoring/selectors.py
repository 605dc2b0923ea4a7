"""Reads for monitors, always scoped to the requesting user's teams."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet

from evalsvc.core.exceptions import NotFound
from evalsvc.core.users import AnyUser
from evalsvc.teams.selectors import get_scoped, scope_to_user

from .models import Alert, Monitor, MonitorCheck, ProductionBatch, ProductionLabels


def monitors_for_user(*, user: AnyUser, team: str | None = None) -> QuerySet[Monitor]:
    qs = scope_to_user(
        Monitor.objects.select_related("team", "created_by", "model_version", "reference_dataset"), user=user
    )
    if team:
        qs = qs.filter(team__slug=team)
    return qs


def monitor_get(*, user: AnyUser, pk: object) -> Monitor:
    return get_scoped(Monitor.objects.select_related("team", "reference_dataset"), user=user, pk=pk, what="monitor")


def checks_for(monitor: Monitor) -> QuerySet[MonitorCheck]:
    return MonitorCheck.objects.filter(monitor=monitor)


def check_get(*, monitor: Monitor, pk: str) -> MonitorCheck:
    try:
        return checks_for(monitor).get(pk=pk)
    except (MonitorCheck.DoesNotExist, ValueError, TypeError, DjangoValidationError):
        raise NotFound("check not found") from None


def alerts_for(monitor: Monitor) -> QuerySet[Alert]:
    return Alert.objects.filter(monitor=monitor)


def batches_for(monitor: Monitor) -> QuerySet[ProductionBatch]:
    return ProductionBatch.objects.filter(monitor=monitor).defer("data")


def labels_for(monitor: Monitor) -> QuerySet[ProductionLabels]:
    return ProductionLabels.objects.filter(monitor=monitor).select_related("received_by").defer("data")
