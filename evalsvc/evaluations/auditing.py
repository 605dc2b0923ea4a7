"""Audit entries for run transitions, kept apart from the state machine they observe.

Transitions are conditional UPDATEs that report whether they changed a row;
only a transition that happened is recorded, in the same transaction, so a
task delivered twice does not log a second "finished".
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any, ParamSpec

from django.db import transaction

from evalsvc.audit.services import audit_record
from evalsvc.core.models import Pk
from evalsvc.core.users import User

from .models import EvaluationRun

P = ParamSpec("P")


def result_sha256(result: Any) -> str | None:
    """A fingerprint of the stored result, so the trail vouches for the numbers a report shows."""
    if result is None:
        return None
    canonical = json.dumps(result, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def record_run(run: EvaluationRun | Pk, action: str, *, actor: User | None = None) -> None:
    if not isinstance(run, EvaluationRun):
        run = EvaluationRun.objects.get(pk=run)
    details: dict[str, Any] = {
        "kind": run.kind,
        "status": run.status,
        "model_version": str(run.model_version_id),
        "dataset_version": str(run.dataset_version_id) if run.dataset_version_id else None,
    }
    if action == "run.submitted":
        details["params"] = run.params
    if run.error:
        details["error"] = run.error[:500]
    if run.result is not None:
        details["result_sha256"] = result_sha256(run.result)
    label = None if actor is not None else (f"worker {run.worker}" if run.worker else "system")
    audit_record(actor=actor, team=run.team_id, action=action, obj=run, details=details, actor_label=label)


def audited_transition(action: str) -> Callable[[Callable[P, bool]], Callable[P, bool]]:
    """Record `action` for ``run_id`` when the wrapped transition returns True (it changed the row)."""

    def decorate(transition: Callable[P, bool]) -> Callable[P, bool]:
        @functools.wraps(transition)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> bool:
            with transaction.atomic():
                changed = transition(*args, **kwargs)
                if changed:
                    run_id = kwargs["run_id"]
                    if not isinstance(run_id, uuid.UUID | str):
                        raise TypeError(f"{transition.__name__} takes run_id as a key, not {type(run_id).__name__}")
                    record_run(run_id, action)
            return changed

        return wrapper

    return decorate
