"""Writes for monitors: create, change, delete (with their beat schedule), ingest batches, request checks."""

from __future__ import annotations

import json
import secrets
from typing import Any

from celery import current_app
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from psycopg.errors import UniqueViolation

from evalsvc.audit.services import audit_record
from evalsvc.core.exceptions import Conflict, ValidationFailed
from evalsvc.core.users import User
from evalsvc.evaluations.kinds.evaluate.params import infer_task
from evalsvc.registry.deferred import require_ready
from evalsvc.registry.selectors import dataset_version_get, model_version_get
from evalsvc.teams.selectors import require_write
from workers.queues import CPU

from . import ingest
from .models import Monitor, MonitorCheck, ProductionBatch, ProductionLabels, ProductionRow, ProfileStatus
from .profile import profile_key
from .selectors import monitor_get
from .validation import check_webhook_url, clean_detectors, parse_cron

CHECK_TASK = "evalsvc.monitor_check"
PROFILE_TASK = "evalsvc.monitor_profile"
#: Row ids looked up per query (labels by row id, naming duplicates).
ID_CHUNK = 10_000


def _schedule(monitor: Monitor) -> None:
    """Create or update the monitor's django-celery-beat entry (database schedule)."""
    fields = parse_cron(monitor.schedule)
    crontab, _ = CrontabSchedule.objects.get_or_create(**fields, timezone=timezone.get_current_timezone_name())
    task = monitor.periodic_task
    if task is None:
        task = PeriodicTask(name=f"monitor {monitor.pk}")
    task.crontab = crontab
    task.task = CHECK_TASK
    task.args = json.dumps([str(monitor.pk)])
    task.queue = CPU
    task.enabled = monitor.enabled
    task.save()
    if monitor.periodic_task_id != task.pk:
        monitor.periodic_task = task
        monitor.save(update_fields=["periodic_task"])


def _profile_refresh(monitor: Monitor) -> None:
    """Mark the reference profile as building when what it is built from changed, and queue its build."""
    key = profile_key(monitor)
    if key == monitor.profile_key and monitor.profile_status != ProfileStatus.FAILED:
        return
    monitor.profile_key, monitor.profile_status, monitor.profile_error = key, ProfileStatus.BUILDING, ""
    monitor.profile_updated_at = timezone.now()
    monitor.save(update_fields=["profile_key", "profile_status", "profile_error", "profile_updated_at"])
    transaction.on_commit(lambda: current_app.send_task(PROFILE_TASK, args=[str(monitor.pk), key], queue=CPU))


def _reference_for(*, user: User, team_id: object, pk: object, columns: list[str] | None) -> Any:
    reference = dataset_version_get(user=user, pk=pk)
    if reference.team_id != team_id:
        raise ValidationFailed("the model version and the reference data set belong to different teams")
    require_ready(reference)
    if reference.format == "imagefolder":
        raise ValidationFailed("a monitor compares tables; the reference must be a CSV or Parquet data set")
    if columns is not None:
        missing = [c for c in columns if c not in reference.column_names]
        if missing:
            raise ValidationFailed(f"columns not in the reference {reference}: {', '.join(missing)}")
    return reference


def _snapshot(monitor: Monitor) -> dict[str, Any]:
    return {
        "name": monitor.name,
        "model_version": str(monitor.model_version_id),
        "reference_dataset": str(monitor.reference_dataset_id),
        "columns": monitor.columns,
        "detectors": monitor.detectors,
        "window_hours": monitor.window_hours,
        "schedule": monitor.schedule,
        "webhook_url": monitor.webhook_url,
        "email_to": monitor.email_to,
        "row_id_column": monitor.row_id_column,
        "task": monitor.task,
        "enabled": monitor.enabled,
    }


@transaction.atomic
def monitor_create(*, user: User, data: dict[str, Any], service_host: str | None = None) -> Monitor:
    model_version = model_version_get(user=user, pk=data["model_version"])
    reference = _reference_for(
        user=user, team_id=model_version.team_id, pk=data["reference_dataset"], columns=data.get("columns")
    )
    require_write(user=user, team=model_version.team)
    require_ready(model_version)
    columns = list(data.get("columns") or reference.column_names)
    parse_cron(data["schedule"])
    row_id_column = (data.get("row_id_column") or "").strip()
    if row_id_column in columns:
        raise ValidationFailed(f"row_id_column {row_id_column!r} is a compared column; row ids are not compared")
    task = data.get("task") or infer_task(model_version)
    if task not in ("classification", "regression"):
        raise ValidationFailed(f"task must be 'classification' or 'regression', not {task!r}")
    if Monitor.objects.filter(team=model_version.team, name=data["name"]).exists():
        raise ValidationFailed(f"team {model_version.team.slug!r} already has a monitor named {data['name']!r}")
    monitor = Monitor.objects.create(
        team=model_version.team,
        name=data["name"],
        model_version=model_version,
        reference_dataset=reference,
        columns=columns,
        detectors=clean_detectors(data.get("detectors") or {}, reference_id=str(reference.pk), columns=columns),
        window_hours=data.get("window_hours", 24),
        schedule=" ".join(data["schedule"].split()),
        webhook_url=check_webhook_url(data.get("webhook_url") or "", service_host=service_host),
        webhook_secret=secrets.token_hex(32),
        email_to=list(data.get("email_to") or []),
        row_id_column=row_id_column,
        task=task,
        enabled=data.get("enabled", True),
        created_by=user,
    )
    _schedule(monitor)
    _profile_refresh(monitor)
    audit_record(actor=user, team=monitor.team, action="monitor.created", obj=monitor, details=_snapshot(monitor))
    return monitor


@transaction.atomic
def monitor_update(*, user: User, pk: object, data: dict[str, Any], service_host: str | None = None) -> Monitor:
    monitor = monitor_get(user=user, pk=pk)
    require_write(user=user, team=monitor.team)
    before = _snapshot(monitor)
    if data.get("reference_dataset") and str(data["reference_dataset"]) != str(monitor.reference_dataset_id):
        # Another reference (a newer version, say) keeps the monitor's columns: it must carry them all.
        monitor.reference_dataset = _reference_for(
            user=user, team_id=monitor.team_id, pk=data["reference_dataset"], columns=monitor.columns
        )
        data = {"detectors": monitor.detectors, **data}  # checked again against the new reference
    if "schedule" in data:
        parse_cron(data["schedule"])
        monitor.schedule = " ".join(data["schedule"].split())
    if "webhook_url" in data:
        monitor.webhook_url = check_webhook_url(data["webhook_url"] or "", service_host=service_host)
    if "detectors" in data:
        monitor.detectors = clean_detectors(
            data["detectors"] or {}, reference_id=str(monitor.reference_dataset_id), columns=monitor.columns
        )
    for field in ("window_hours", "email_to", "enabled"):
        if field in data:
            setattr(monitor, field, data[field])
    monitor.save()
    _schedule(monitor)
    _profile_refresh(monitor)
    after = _snapshot(monitor)
    changed = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    audit_record(actor=user, team=monitor.team, action="monitor.changed", obj=monitor, details=changed)
    return monitor


@transaction.atomic
def monitor_delete(*, user: User, pk: object) -> None:
    monitor = monitor_get(user=user, pk=pk)
    require_write(user=user, team=monitor.team)
    task = monitor.periodic_task
    audit_record(actor=user, team=monitor.team, action="monitor.deleted", obj=("monitor", str(monitor.pk)),
                 details=_snapshot(monitor))  # fmt: skip
    try:
        with transaction.atomic():
            monitor.delete()
    except ProtectedError:
        raise Conflict(
            f"monitor {monitor.name!r} is part of a report's history and cannot be deleted; disable it instead"
        ) from None
    if task is not None:
        task.delete()


def batch_ingest(
    *, user: User, pk: object, rows: Any = None, file_name: str | None = None, file_data: bytes | None = None
) -> ProductionBatch:
    """Store one batch of production rows whole, or refuse it whole with a 400."""
    monitor = monitor_get(user=user, pk=pk)
    require_write(user=user, team=monitor.team)
    if file_data is not None:
        if len(file_data) > ingest.max_batch_bytes():
            raise ValidationFailed(
                f"the batch is {len(file_data)} bytes; at most {ingest.max_batch_bytes()} bytes per request"
            )
        frame = ingest.frame_from_file(file_name or "", file_data)
    else:
        frame = ingest.frame_from_rows(rows)
    dtypes = {c["name"]: c.get("dtype", "string") for c in monitor.reference_dataset.columns}
    frame = ingest.checked_frame(frame, columns=monitor.columns, dtypes=dtypes, row_id_column=monitor.row_id_column)
    data, sha = ingest.to_parquet(frame)
    if len(data) > ingest.max_batch_bytes():
        raise ValidationFailed(f"the batch is {len(data)} bytes stored; at most {ingest.max_batch_bytes()}")
    # The batch and its row ids in one transaction: stored whole or not at all.
    with transaction.atomic():
        batch = ProductionBatch.objects.create(
            monitor=monitor, rows=int(frame.shape[0]), size_bytes=len(data), sha256=sha, data=data, received_by=user
        )
        if monitor.row_id_column:
            _index_row_ids(monitor, batch, frame[monitor.row_id_column].tolist())
    return batch


def _copy_row_ids(monitor: Monitor, batch: ProductionBatch, ids: list[str]) -> None:
    """PostgreSQL's COPY: a million ids in about a second, where INSERTs take tens."""
    table = ProductionRow._meta.db_table
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY {table} (monitor_id, row_id, batch_id, position) FROM STDIN") as copy,
    ):
        for position, row_id in enumerate(ids):
            copy.write_row((monitor.pk, row_id, batch.pk, position))


def _index_row_ids(monitor: Monitor, batch: ProductionBatch, ids: list[str]) -> None:
    """(monitor, row id) → (batch, position), copied in one statement; an id received before is a 400."""
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                _copy_row_ids(monitor, batch, ids)
            else:
                rows = (ProductionRow(monitor=monitor, row_id=r, batch=batch, position=i) for i, r in enumerate(ids))
                ProductionRow.objects.bulk_create(rows, batch_size=5000)
    except (IntegrityError, UniqueViolation):
        seen: list[str] = []
        for start in range(0, len(ids), ID_CHUNK):
            chunk = ids[start : start + ID_CHUNK]
            seen += ProductionRow.objects.filter(monitor=monitor, row_id__in=chunk).values_list("row_id", flat=True)
        shown = ", ".join(repr(i) for i in seen[:5]) + (" …" if len(seen) > 5 else "")
        raise ValidationFailed(
            f"{len(seen)} row ids of this batch were received before by this monitor: {shown}; "
            f"a row id names one row, so the batch was not stored"
        ) from None


def _quoted(value: object, length: int = 60) -> str:
    """A value a message quotes, cut short: a hostile id is not echoed whole."""
    text = repr(value)
    return text if len(text) <= length else text[:length] + "…"


def labels_ingest(
    *, user: User, pk: object, labels: Any, batch: str | None = None, row_ids: Any = None
) -> ProductionLabels:
    """True labels for rows already received: for one batch in its row order, or by row id. Whole or not at all."""
    import pandas as pd

    monitor = monitor_get(user=user, pk=pk)
    require_write(user=user, team=monitor.team)
    values = ingest.label_values(labels, task=monitor.task or "classification")
    if (batch is None) == (row_ids is None):
        raise ValidationFailed("send labels with either 'batch' (one label per row, in its order) or 'row_ids'")
    target = None
    if batch is not None:
        try:
            target = ProductionBatch.objects.defer("data").get(monitor=monitor, pk=batch)
        except (ProductionBatch.DoesNotExist, ValueError, DjangoValidationError):
            raise ValidationFailed(f"batch: this monitor received no batch {_quoted(batch)}") from None
        if len(values) != target.rows:
            raise ValidationFailed(f"the batch has {target.rows} rows but {len(values)} labels were sent")
        frame = pd.DataFrame({"position": range(len(values)), "label": values})
    else:
        if not monitor.row_id_column:
            raise ValidationFailed("this monitor has no row_id_column; send labels for a batch instead")
        if not isinstance(row_ids, list) or len(row_ids) != len(values):
            raise ValidationFailed(f"row_ids must be a list with one id per label ({len(values)})")
        ids = pd.Series([str(v) for v in row_ids], dtype="string")
        if ids.duplicated().any():
            raise ValidationFailed(f"row id {_quoted(ids[ids.duplicated()].iloc[0])} is labelled more than once")
        known: set[str] = set()
        for start in range(0, len(ids), ID_CHUNK):
            chunk = ids.iloc[start : start + ID_CHUNK].tolist()
            known.update(
                ProductionRow.objects.filter(monitor=monitor, row_id__in=chunk).values_list("row_id", flat=True)
            )
        unknown = [i for i in ids.tolist() if i not in known]
        if unknown:
            shown = ", ".join(_quoted(i) for i in unknown[:5]) + (" …" if len(unknown) > 5 else "")
            raise ValidationFailed(f"{len(unknown)} row ids were never received by this monitor: {shown}")
        frame = pd.DataFrame({"row_id": ids, "label": values})
    # One INSERT: the labels are stored whole or not at all.
    return ProductionLabels.objects.create(
        monitor=monitor, batch=target, rows=len(values), data=ingest.labels_parquet(frame), received_by=user
    )


def check_request(*, user: User, pk: object) -> MonitorCheck:
    """An on-demand check of the latest window, queued now."""
    monitor = monitor_get(user=user, pk=pk)
    require_write(user=user, team=monitor.team)
    check = MonitorCheck.objects.create(monitor=monitor, trigger="on_demand")
    transaction.on_commit(
        lambda: current_app.send_task(CHECK_TASK, args=[str(monitor.pk)], kwargs={"check_id": str(check.pk)}, queue=CPU)
    )
    return check
