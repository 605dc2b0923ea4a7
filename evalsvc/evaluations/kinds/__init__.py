"""Job kinds: one package each, listed once by import string in ``settings.EVALSVC_JOB_KINDS``.

Each entry names a module with a ``KIND`` (or ``"module:ATTRIBUTE"``), a
:class:`JobKind` that carries everything about the kind: params schema
(checked at submission, so a bad job never reaches a queue), routing, task
name and module, figures, report section, CSV rows and page template. The
Celery app's task imports, the submission form's choices, the run page and
reports all derive from that list; adding a kind is its own package plus one
line in settings, and touches no other kind.
"""

from __future__ import annotations

import importlib

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from evalsvc.core.exceptions import ValidationFailed

from .base import FormField, JobContext, JobKind, Section

__all__ = ["FormField", "JobContext", "JobKind", "Section", "all_kinds", "get_kind", "load_kind"]

_kinds: dict[str, JobKind] | None = None


def load_kind(path: str) -> JobKind:
    """``"package.module"`` (its ``KIND``) or ``"package.module:ATTRIBUTE"`` → the JobKind it names."""
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImproperlyConfigured(f"EVALSVC_JOB_KINDS: cannot import {module_name!r}: {exc}") from exc
    kind = getattr(module, attribute or "KIND", None)
    if not isinstance(kind, JobKind):
        raise ImproperlyConfigured(f"EVALSVC_JOB_KINDS: {path!r} does not name a JobKind")
    return kind


def _registry() -> dict[str, JobKind]:
    global _kinds
    if _kinds is None:
        kinds: dict[str, JobKind] = {}
        for path in settings.EVALSVC_JOB_KINDS:
            kind = load_kind(path)
            if kind.name in kinds:
                raise ImproperlyConfigured(f"EVALSVC_JOB_KINDS: two entries are named {kind.name!r}")
            kinds[kind.name] = kind
        _kinds = kinds
    return _kinds


def get_kind(name: str) -> JobKind:
    kinds = _registry()
    try:
        return kinds[name]
    except KeyError:
        raise ValidationFailed(f"unknown job kind {name!r}; known kinds: {', '.join(sorted(kinds))}") from None


def all_kinds() -> list[JobKind]:
    """The registered kinds, in settings order."""
    return list(_registry().values())


def _reset(*, setting: str, **kwargs: object) -> None:
    global _kinds
    if setting == "EVALSVC_JOB_KINDS":
        _kinds = None


setting_changed.connect(_reset)
