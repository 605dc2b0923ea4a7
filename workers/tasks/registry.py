"""Validation of a large upload after the request stored it: the version becomes ready or failed."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from evalsvc.registry.deferred import (
    TASK_NAME,
    artifact_validate,
    artifact_validation_failed,
    artifact_validation_retry_later,
)
from workers.queues import REGISTRY

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    name=TASK_NAME,
    queue=REGISTRY,
    acks_late=True,
    soft_time_limit=3600,
    time_limit=3660,
    max_retries=3,
    default_retry_delay=10,
)
def validate_artifact(self: Any, kind: str, version_id: str) -> str:
    """Safe to run twice: a version that is no longer "validating" is left as it is."""
    try:
        return artifact_validate(
            kind=kind, version_id=version_id, task_id=self.request.id, worker=self.request.hostname or ""
        )
    except OSError as exc:  # the stored file could not be read this time
        if self.request.retries < self.max_retries:
            artifact_validation_retry_later(kind=kind, version_id=version_id)
            raise self.retry(exc=exc) from exc
        message = f"the stored file could not be read: {exc}"
    except SoftTimeLimitExceeded:
        message = f"validating the file took longer than {self.soft_time_limit} s"
    except Exception as exc:  # never leave it "validating" for ever
        logger.exception("validating %s %s failed with an internal error", kind, version_id)
        message = f"internal error while validating: {exc.__class__.__name__}: {exc}"
    artifact_validation_failed(kind=kind, version_id=version_id, message=message)
    return "failed"
