"""Large uploads validated by a worker: "validating" becomes "ready" or "failed".

The request stores the bytes and creates the version as "validating"
(``services``), and once that commits a worker task runs
:func:`artifact_validate`. It validates the stored file exactly as a
small upload is validated inside the request (``inspection``) and records
the outcome: the version becomes "ready" with what was learnt, or "failed"
with the reason, and the bytes of a failed one are removed (unless another
version has the same bytes). Each outcome is in the audit trail.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import current_app
from django.db import transaction
from django.db.models import F, Q

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


def validation_enqueue(version: ModelVersion | DatasetVersion) -> None:
    """Send the version to a worker once the row is committed (call inside the creating transaction)."""
    kind, pk = _kind(version), str(version.pk)

    def send() -> None:
        try:
            current_app.send_task(TASK_NAME, args=[kind, pk], queue=REGISTRY)
        except Exception as exc:  # the broker is down: fail it visibly instead of validating forever
            logger.exception("could not enqueue the validation of %s %s", kind, pk)
            artifact_validation_failed(
                kind=kind,
                version_id=pk,
                message=f"the job queue could not be reached ({exc.__class__.__name__}); upload the file again",
            )

    transaction.on_commit(send)


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


def artifact_validate(*, kind: str, version_id: str) -> str:
    """Validate a stored "validating" version; returns its status afterwards ("skipped" if gone or done).

    Reading the stored file may fail for a moment (remote storage); that
    ``OSError`` is left to the caller to retry. A refused file ends "failed".
    """
    model = _MODELS[kind]
    started = model.objects.filter(pk=version_id, status=ArtifactStatus.VALIDATING).update(
        validation_attempts=F("validation_attempts") + 1
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
            status=ArtifactStatus.READY, **facts
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


def artifact_validation_failed(*, kind: str, version_id: str, message: str) -> None:
    """Mark a "validating" version failed with `message`, audit it and remove its bytes once committed."""
    model = _MODELS[kind]
    with transaction.atomic():
        version: Any = model.objects.select_for_update().filter(pk=version_id).first()
        if version is None or version.status != ArtifactStatus.VALIDATING:
            return
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
