"""Large uploads validated by a worker: "validating" becomes "ready" or "failed".

The request stores the bytes and creates the version as "validating"
(``services``), and once that commits a worker task runs
:func:`artifact_validate`. It validates the stored file exactly as a
small upload is validated inside the request (``inspection``) and records
the outcome: the version becomes "ready" with what was learnt, or "failed"
with the reason, and the bytes of a failed one are removed (unless another
version has the same bytes). Each outcome is in the audit trail.

Validations get what runs get (``evalsvc.evaluations.recovery``): a version
whose message the broker could not take stays "validating", unsent, and
:func:`validations_unsent_enqueue` (every worker's heartbeat, and beat) sends
it once the broker is back; one whose worker stopped reporting mid-validation
is sent again under a new task id by :func:`validations_of_lost_workers_recover`,
up to ``MAX_ATTEMPTS`` starts.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from celery import current_app
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from evalsvc.audit.services import audit_record
from evalsvc.core.exceptions import Conflict, ValidationFailed
from workers.queues import REGISTRY

from .inspection import dataset_facts, model_facts
from .models import ArtifactStatus, DatasetVersion, ModelVersion
from .storage import blob_delete, blob_local_path

logger = logging.getLogger(__name__)

#: The worker task's registered name.
TASK_NAME = "evalsvc.artifact_validate"
#: Starts of a validation (each redelivered after its worker was lost) before the version fails.
MAX_ATTEMPTS = 3
_MODELS: dict[str, type[ModelVersion] | type[DatasetVersion]] = {
    "model_version": ModelVersion,
    "dataset_version": DatasetVersion,
}


def _kind(version: ModelVersion | DatasetVersion) -> str:
    return "model_version" if isinstance(version, ModelVersion) else "dataset_version"


#: What a "validating" version says while the broker cannot take its message.
UNSENT_MESSAGE = "waiting for the job queue, which could not be reached; the file is validated as soon as it is back"
#: A version younger than this may still be on its way to the broker from the request that stored it.
UNSENT_AFTER_S = 10


def validation_enqueue(version: ModelVersion | DatasetVersion) -> None:
    """Send the version to a worker once the row is committed (call inside the creating transaction)."""
    transaction.on_commit(partial(validation_send, kind=_kind(version), version_id=str(version.pk)))


def validation_send(*, kind: str, version_id: str) -> bool:
    """Send a "validating" version's message; True when the broker took it.

    The version is claimed for this send first (its task id written where
    there was none), so two senders never both send it. When the broker
    cannot be reached the claim is undone and the version stays
    "validating", unsent, saying so: :func:`validations_unsent_enqueue` sends
    it once the broker is back.
    """
    model = _MODELS[kind]
    task_id = str(uuid.uuid4())
    claimed = model.objects.filter(pk=version_id, status=ArtifactStatus.VALIDATING, validation_task_id="").update(
        validation_task_id=task_id
    )
    if not claimed:
        return False  # sent already, or no longer validating
    try:
        current_app.send_task(TASK_NAME, args=[kind, version_id], queue=REGISTRY, task_id=task_id)
    except Exception as exc:  # the broker is down: keep it validating, unsent, and say so
        logger.warning("could not enqueue the validation of %s %s: %s: %s", kind, version_id, type(exc).__name__, exc)
        model.objects.filter(pk=version_id, status=ArtifactStatus.VALIDATING, validation_task_id=task_id).update(
            validation_task_id="", status_message=UNSENT_MESSAGE
        )
        return False
    model.objects.filter(pk=version_id, status=ArtifactStatus.VALIDATING, status_message=UNSENT_MESSAGE).update(
        status_message=""
    )
    return True


def validations_unsent_enqueue() -> int:
    """Send every "validating" version that has no message (its broker was down); returns how many were sent."""
    cutoff = timezone.now() - timedelta(seconds=UNSENT_AFTER_S)
    sent = 0
    for kind, model in _MODELS.items():
        unsent = model.objects.filter(status=ArtifactStatus.VALIDATING, validation_task_id="", created_at__lt=cutoff)
        for version_id in unsent.order_by("created_at").values_list("pk", flat=True):
            if validation_send(kind=kind, version_id=str(version_id)):
                sent += 1
                logger.info("validation of %s %s sent to the job queue after it came back", kind, version_id)
            elif model.objects.filter(pk=version_id, status=ArtifactStatus.VALIDATING, validation_task_id="").exists():
                return sent  # the broker is still down: the next round tries again
    return sent


@dataclass(frozen=True)
class RecoveredValidation:
    kind: str
    version_id: str
    worker: str
    action: str  # "requeued" or "failed"


def validations_of_lost_workers_recover(*, live: set[str], stale_after_s: float) -> list[RecoveredValidation]:
    """Requeue (or fail) every validation whose worker stopped reporting.

    ``live`` names the workers that reported within ``stale_after_s`` (the
    fleet's view; passed in, as the registry does not read the fleet). A
    validation started on another worker before that window is lost with its
    worker: it is sent again under a new task id (the old message, should the
    broker hand it out later, no longer matches and is skipped), and after
    ``MAX_ATTEMPTS`` starts it fails, saying so.
    """
    cutoff = timezone.now() - timedelta(seconds=stale_after_s)
    recovered = []
    for kind, model in _MODELS.items():
        orphans = (
            model.objects.filter(status=ArtifactStatus.VALIDATING, validation_started_at__lt=cutoff)
            .exclude(validation_worker="")
            .exclude(validation_worker__in=live)
        )
        for version in orphans:
            worker, task_id = version.validation_worker, version.validation_task_id
            if version.validation_attempts < MAX_ATTEMPTS:
                with transaction.atomic():
                    moved = model.objects.filter(
                        pk=version.pk,
                        status=ArtifactStatus.VALIDATING,
                        validation_worker=worker,
                        validation_task_id=task_id,
                    ).update(
                        validation_task_id="",
                        validation_worker="",
                        validation_started_at=None,
                        status_message=f"requeued: worker {worker} stopped reporting"[:300],
                    )
                    if moved:
                        transaction.on_commit(partial(validation_send, kind=kind, version_id=str(version.pk)))
                action = "requeued"
            else:
                moved = artifact_validation_failed(
                    kind=kind,
                    version_id=str(version.pk),
                    message=f"the worker {worker} validating this file stopped reporting and the validation was "
                    f"lost with it, {version.validation_attempts} times; nothing was registered, upload the file "
                    "again",
                )
                action = "failed"
            if moved:
                logger.warning("%s %s: worker %s lost, validation %s", kind, version.pk, worker, action)
                recovered.append(RecoveredValidation(kind, str(version.pk), worker, action))
    return recovered


def require_ready(version: ModelVersion | DatasetVersion) -> None:
    """Refuse to use a version whose file is still being checked, or was refused (409)."""
    if version.status == ArtifactStatus.VALIDATING:
        raise Conflict(
            f"{version} is still being validated; try again when its status is ready",
            extra={"status": version.status},
        )
    if version.status == ArtifactStatus.FAILED:
        raise Conflict(
            f"{version} failed validation and cannot be used: {version.status_message}",
            extra={"status": version.status},
        )


def artifact_validate(*, kind: str, version_id: str, task_id: str | None = None, worker: str = "") -> str:
    """Validate a stored "validating" version; returns its status afterwards ("skipped" if gone or done).

    With ``task_id`` (the worker's message) the version is validated only
    while that message is the one sent for it: a message replaced after its
    worker was lost is skipped. ``worker`` is recorded, so a worker that stops
    reporting mid-validation gets the validation requeued. Reading the stored
    file may fail for a moment (remote storage); that ``OSError`` is left to
    the caller to retry. A refused file ends "failed".
    """
    model = _MODELS[kind]
    claim = model.objects.filter(pk=version_id, status=ArtifactStatus.VALIDATING)
    if task_id is not None:
        claim = claim.filter(validation_task_id=task_id)
    started = claim.update(
        validation_attempts=F("validation_attempts") + 1,
        validation_worker=worker,
        validation_started_at=timezone.now(),
    )
    version: Any = model.objects.select_related("team", "created_by").filter(pk=version_id).first()
    if not started or version is None:
        return "skipped"
    if version.validation_attempts > MAX_ATTEMPTS:
        # Each earlier start ended with its worker gone (killed, out of memory) before an outcome.
        artifact_validation_failed(
            kind=kind,
            version_id=version_id,
            message=f"validation stopped its worker {MAX_ATTEMPTS} times before it could finish (the file may need "
            "more memory than a worker has); nothing was registered",
        )
        return ArtifactStatus.FAILED
    path = blob_local_path(key=version.storage_key, sha256=version.sha256)
    try:
        if isinstance(version, ModelVersion):
            facts = _model_facts(version, path)
        else:
            facts = dataset_facts(path=path, fmt=version.format, label_column=version.label_column)
    except ValidationFailed as exc:
        artifact_validation_failed(kind=kind, version_id=version_id, message=exc.message)
        return ArtifactStatus.FAILED
    with transaction.atomic():
        changed = model.objects.filter(pk=version_id, status=ArtifactStatus.VALIDATING).update(
            status=ArtifactStatus.READY, status_message="", **facts
        )
        if not changed:
            return "skipped"
        version.refresh_from_db()
        audit_record(
            actor=None,
            actor_label="validation worker",
            team=version.team,
            action=f"{kind}.validated",
            obj=version,
            details=_outcome_details(version),
        )
    return ArtifactStatus.READY


def artifact_validation_retry_later(*, kind: str, version_id: str) -> None:
    """The start that is about to be retried ended on its own (storage could not be read): not a lost worker."""
    _MODELS[kind].objects.filter(pk=version_id, status=ArtifactStatus.VALIDATING, validation_attempts__gt=0).update(
        validation_attempts=F("validation_attempts") - 1
    )


def _model_facts(version: ModelVersion, path: str) -> dict[str, Any]:
    weights = (
        blob_local_path(key=version.weights_storage_key, sha256=version.weights_sha256)
        if version.weights_storage_key
        else None
    )
    tokenizer = (
        blob_local_path(key=version.tokenizer_storage_key, sha256=version.tokenizer_sha256)
        if version.tokenizer_storage_key
        else None
    )
    declared = version.feature_names if version.feature_names_source == "declared" else None
    return model_facts(
        path=path,
        fmt=version.format,
        weights_path=weights,
        processing=version.processing,
        tokenizer_path=tokenizer,
        feature_names=declared,
    )


def artifact_validation_failed(*, kind: str, version_id: str, message: str) -> bool:
    """Mark a "validating" version failed with `message`, audit it and remove its bytes once committed.

    Returns False when it was no longer validating (nothing changed).
    """
    model = _MODELS[kind]
    with transaction.atomic():
        version: Any = model.objects.select_for_update().filter(pk=version_id).first()
        if version is None or version.status != ArtifactStatus.VALIDATING:
            return False
        keys = [
            k
            for k in (
                version.storage_key,
                getattr(version, "weights_storage_key", ""),
                getattr(version, "tokenizer_storage_key", ""),
            )
            if k
        ]
        version.status, version.status_message = ArtifactStatus.FAILED, message
        # A failed version keeps its row (and message), not its bytes.
        cleared = {"storage_key": ""}
        if isinstance(version, ModelVersion):
            cleared.update(weights_storage_key="", tokenizer_storage_key="")
        for field, value in cleared.items():
            setattr(version, field, value)
        version.save(update_fields=["status", "status_message", *cleared])
        audit_record(
            actor=None,
            actor_label="validation worker",
            team=version.team,
            action=f"{kind}.validation_failed",
            obj=version,
            details={**_outcome_details(version), "message": message},
        )
        transaction.on_commit(lambda: _drop_unused(keys))
    return True


def _drop_unused(keys: list[str]) -> None:
    for key in keys:
        in_use = (
            ModelVersion.objects.filter(
                Q(storage_key=key) | Q(weights_storage_key=key) | Q(tokenizer_storage_key=key)
            ).exists()
            or DatasetVersion.objects.filter(storage_key=key).exists()
        )
        if not in_use:
            blob_delete(key)


def _outcome_details(version: ModelVersion | DatasetVersion) -> dict[str, Any]:
    details: dict[str, Any] = {"version": version.version, "sha256": version.sha256, "status": version.status}
    if isinstance(version, DatasetVersion) and version.status == ArtifactStatus.READY:
        details["rows"] = version.rows
    return details
