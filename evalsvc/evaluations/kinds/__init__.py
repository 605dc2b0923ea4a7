"""Job kinds: one module each, registered here by name.

A kind is its params schema (checked at submission, so a bad job never
reaches a queue), the Celery task that runs it and the queue it goes to.
Its figures live in ``evalsvc.dashboards.figures``. Adding a kind touches no
other kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from evalsvc.core.exceptions import ValidationFailed
from evalsvc.registry.models import DatasetVersion, ModelVersion


@dataclass(frozen=True)
class JobKind:
    name: str
    label: str
    #: Celery task name; sent by name so the web side never imports worker code.
    task_name: str
    needs_dataset: bool
    clean_params: Callable[[dict[str, Any], ModelVersion, DatasetVersion | None], dict[str, Any]]
    #: The queue for a job with these (cleaned) params; raises when no live worker can take it.
    route: Callable[[dict[str, Any], ModelVersion], str]


_KINDS: dict[str, JobKind] = {}


def register(kind: JobKind) -> JobKind:
    _KINDS[kind.name] = kind
    return kind


def get_kind(name: str) -> JobKind:
    _load()
    try:
        return _KINDS[name]
    except KeyError:
        known = ", ".join(sorted(_KINDS))
        raise ValidationFailed(f"unknown job kind {name!r}; known kinds: {known}") from None


def all_kinds() -> list[JobKind]:
    _load()
    return list(_KINDS.values())


def _load() -> None:
    from . import evaluate, parity, profile, quantize  # noqa: F401  (each registers itself)
