"""Declaring or changing a model version's pre/post-processing after registration."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from evalsvc.audit.services import audit_record
from evalsvc.core.exceptions import Conflict, ValidationFailed
from evalsvc.core.users import User
from evalsvc.teams.selectors import require_write
from workers.engine.errors import EngineError

from .models import ModelVersion
from .selectors import model_version_get
from .services import validate_processing
from .storage import blob_local_path


def model_version_processing_set(*, user: User, version_id: object, processing: dict[str, Any] | None) -> ModelVersion:
    """Set (or clear, with None) the processing spec of a version no run has used yet (owners and editors).

    Runs read the spec when they run, so a version already used keeps the spec
    its results were computed with; the refusal says which runs use it.
    """
    version = model_version_get(user=user, pk=version_id)
    require_write(user=user, team=version.team)
    if processing is not None and not isinstance(processing, dict):
        raise ValidationFailed("the processing spec is a JSON object")
    runs = [str(pk)[:8] for pk in version.runs.values_list("pk", flat=True)[:6]]
    if runs:
        raise Conflict(
            f"{version} is used by run(s) {', '.join(runs)}, whose results were computed with its current spec; "
            "its processing spec can no longer change"
        )
    tokenizer = (
        blob_local_path(key=version.tokenizer_storage_key, sha256=version.tokenizer_sha256)
        if version.tokenizer_storage_key
        else None
    )
    try:
        spec = validate_processing(processing, tokenizer_path=tokenizer)
    except EngineError as exc:
        raise ValidationFailed(exc.message) from None
    with transaction.atomic():
        previous = version.processing
        version.processing = spec
        version.save(update_fields=["processing"])
        audit_record(
            actor=user,
            team=version.team,
            action="model_version.processing_set",
            obj=version,
            details={"new": spec, "previous": previous},
        )
    return version
