"""Versions declared to be the same model (e.g. one network's ONNX and TorchScript exports).

A version may link to another with ``same_model_as``; two versions are the
same model when their links lead to the same version. Parity jobs compare
such versions across formats.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from evalsvc.audit.services import audit_record
from evalsvc.core.exceptions import Forbidden, ValidationFailed
from evalsvc.core.users import User
from evalsvc.teams.models import Role, Team
from evalsvc.teams.selectors import role_for

from .models import ModelVersion
from .selectors import model_version_get


def anchor_id(version: ModelVersion) -> Any:
    """The version that `version`'s links end at (itself when it links to none)."""
    seen = {version.pk}
    current = version
    while current.same_model_as_id is not None and current.same_model_as_id not in seen:
        seen.add(current.same_model_as_id)
        current = ModelVersion.objects.only("pk", "same_model_as").get(pk=current.same_model_as_id)
    return current.pk


def declared_same_model(a: ModelVersion, b: ModelVersion) -> bool:
    return a.pk == b.pk or anchor_id(a) == anchor_id(b)


def same_model_target(*, user: User, team: Team, target_id: object) -> ModelVersion:
    """The version a new or changed link points at: one the user sees, in the same team."""
    target = model_version_get(user=user, pk=target_id)
    if target.team_id != team.pk:
        raise ValidationFailed(f"same_model_as: {target} belongs to another team than this model version")
    return target


def model_version_same_model_update(*, user: User, version_id: object, same_model_as: object | None) -> ModelVersion:
    """Declare (or with None, withdraw) which version this one is the same model as (owners and editors; audited)."""
    version = model_version_get(user=user, pk=version_id)
    role = role_for(user=user, team=version.team)
    if role not in (Role.OWNER, Role.EDITOR):
        raise Forbidden(f"your role in team {version.team.slug!r} is {role}; linking versions needs owner or editor")
    target = None
    if same_model_as is not None:
        target = same_model_target(user=user, team=version.team, target_id=same_model_as)
        if target.pk == version.pk:
            raise ValidationFailed("same_model_as: a version cannot link to itself")
        if anchor_id(target) == version.pk:
            raise ValidationFailed(f"same_model_as: {target} already leads back to {version}; link the other way")
    if (target.pk if target else None) == version.same_model_as_id:
        return version
    with transaction.atomic():
        previous = str(version.same_model_as_id) if version.same_model_as_id else None
        version.same_model_as = target
        version.save(update_fields=["same_model_as"])
        audit_record(
            actor=user,
            team=version.team,
            action="model_version.same_model_updated",
            obj=version,
            details={"new": str(target.pk) if target else None, "previous": previous},
        )
    return version
