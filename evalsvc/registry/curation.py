"""Writes to registered artifacts after registration: describing a model, deleting versions.

Every one is recorded in the audit trail. A version that a report or a run
refers to is never deleted: an approved report names its bytes by SHA-256,
and a reviewer must be able to fetch exactly those bytes later.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.db import transaction
from django.db.models import ProtectedError

from evalsvc.audit.services import audit_record
from evalsvc.core.exceptions import Conflict, Forbidden, NotFound, ValidationFailed
from evalsvc.core.users import AnyUser, User
from evalsvc.teams.models import Role, Team
from evalsvc.teams.selectors import get_scoped, role_for

from .models import ArtifactStatus, DatasetVersion, ModelVersion, RegisteredModel
from .selectors import dataset_version_get, model_version_get
from .storage import blob_delete

A = TypeVar("A", ModelVersion, DatasetVersion)
#: How many ids a refusal lists before "and N more".
_LISTED = 5


def _artifact_details(version: ModelVersion | DatasetVersion) -> dict[str, Any]:
    details: dict[str, Any]
    if isinstance(version, ModelVersion):
        details = {"name": version.registered_model.name, "format": version.format}
        parent = getattr(version, "parent_id", None)
        if parent:
            details.update({"parent": str(parent), "variant": getattr(version, "variant", "")})
    else:
        details = {"name": version.dataset.name, "format": version.format}
        if version.status != ArtifactStatus.VALIDATING:  # not counted yet
            details["rows"] = version.rows
    if version.status != ArtifactStatus.READY:
        details["status"] = version.status
    return {**details, "version": version.version, "sha256": version.sha256, "size_bytes": version.size_bytes}


def record_registration(create: Callable[[list[str]], A], *, user: User) -> Callable[[list[str]], A]:
    """Wrap a registration's row-creating step so the audit entry commits with the rows."""

    def create_and_record(keys: list[str]) -> A:
        version = create(keys)
        what = "model_version" if isinstance(version, ModelVersion) else "dataset_version"
        audit_record(
            actor=user, team=version.team, action=f"{what}.registered", obj=version, details=_artifact_details(version)
        )
        return version

    return create_and_record


def _require_owner(*, user: User, team: Team, doing: str) -> None:
    role = role_for(user=user, team=team)
    if role is None:
        raise NotFound("team not found")
    if role != Role.OWNER:
        raise Forbidden(f"your role in team {team.slug!r} is {role}; {doing} needs owner")


def _listed(ids: list[Any]) -> str:
    shown = ", ".join(str(i) for i in ids[:_LISTED])
    return shown + (f" and {len(ids) - _LISTED} more" if len(ids) > _LISTED else "")


# --- the model's free text ---------------------------------------------------------

_TEXT_FIELDS = ("description", "intended_use", "limitations")


def registered_model_get(*, user: AnyUser, pk: object) -> RegisteredModel:
    return get_scoped(RegisteredModel.objects.select_related("team"), user=user, pk=pk, what="model")


def registered_model_update(*, user: User, model_id: object, **fields: str) -> RegisteredModel:
    """Set a model's description, intended use or known limitations (owners and editors)."""
    model = registered_model_get(user=user, pk=model_id)
    role = role_for(user=user, team=model.team)
    if role not in (Role.OWNER, Role.EDITOR):
        raise Forbidden(f"your role in team {model.team.slug!r} is {role}; describing a model needs owner or editor")
    unknown = set(fields) - set(_TEXT_FIELDS)
    if unknown:
        raise ValidationFailed(f"cannot change {', '.join(sorted(unknown))}; editable: {', '.join(_TEXT_FIELDS)}")
    changed = {k: v for k, v in fields.items() if v is not None and getattr(model, k) != v}
    if not changed:
        return model
    with transaction.atomic():
        previous = {k: getattr(model, k) for k in changed}
        for key, value in changed.items():
            setattr(model, key, value)
        model.save(update_fields=list(changed))
        audit_record(
            actor=user,
            team=model.team,
            action="model.updated",
            obj=model,
            details={"new": changed, "previous": previous},
        )
    return model


def model_version_feature_names_update(*, user: User, version_id: object, feature_names: list[str]) -> ModelVersion:
    """Declare or correct the data columns a model version takes (owners and editors; audited)."""
    from .services import clean_feature_names, resolve_feature_names

    version = model_version_get(user=user, pk=version_id)
    role = role_for(user=user, team=version.team)
    if role not in (Role.OWNER, Role.EDITOR):
        raise Forbidden(f"your role in team {version.team.slug!r} is {role}; naming features needs owner or editor")
    names = clean_feature_names(feature_names)
    if names == version.feature_names and version.feature_names_source == "declared":
        return version
    resolve_feature_names(declared=names, processing=version.processing, from_model=None, inputs=version.inputs)
    with transaction.atomic():
        previous = {"feature_names": version.feature_names, "source": version.feature_names_source}
        version.feature_names, version.feature_names_source = names, "declared"
        version.save(update_fields=["feature_names", "feature_names_source"])
        audit_record(
            actor=user,
            team=version.team,
            action="model_version.features_updated",
            obj=version,
            details={"new": {"feature_names": names, "source": "declared"}, "previous": previous},
        )
    return version


# --- deletion --------------------------------------------------------------------------


def _approved_reports(runs: Any, extra: Any = None) -> list[str]:
    # Reverse lookups by name: the registry does not import the reports app.
    ids = set(runs.filter(report_runs__report__status="approved").values_list("report_runs__report_id", flat=True))
    if extra is not None:
        ids |= set(extra.filter(status="approved").values_list("pk", flat=True))
    return sorted(str(i) for i in ids)


def _refuse_if_used(
    *,
    what: str,
    runs: Any,
    approved: list[str],
    drafts: list[str],
    children: list[str] = (),  # type: ignore[assignment]
) -> None:
    if approved:
        raise Conflict(
            f"{what} appears in approved report{'s' if len(approved) > 1 else ''} {_listed(approved)}: "
            "an approved report refers to its bytes and SHA-256, so it is kept",
            extra={"reports": approved},
        )
    if drafts:
        raise Conflict(
            f"{what} appears in draft report(s) {_listed(drafts)}; delete those first", extra={"reports": drafts}
        )
    if children:
        raise Conflict(f"{what} is the parent of version(s) {_listed(children)}", extra={"variants": children})
    run_ids = [str(pk) for pk in runs.values_list("pk", flat=True)]
    if run_ids:
        raise Conflict(
            f"{what} is used by {len(run_ids)} run{'s' if len(run_ids) > 1 else ''} ({_listed(run_ids)}), "
            "whose results refer to it",
            extra={"runs": run_ids},
        )


def _drop_unshared(keys: list[str]) -> None:
    """Remove blobs on commit unless another version (of any team) still has the same bytes."""

    def drop() -> None:
        for key in keys:
            in_use = (
                ModelVersion.objects.filter(storage_key=key).exists()
                or DatasetVersion.objects.filter(storage_key=key).exists()
            )
            if not in_use:
                blob_delete(key)

    transaction.on_commit(drop)


def _delete(version: ModelVersion | DatasetVersion) -> None:
    try:
        version.delete()
    except ProtectedError as exc:  # referred to by a table this module does not know about
        kinds = sorted({str(obj._meta.verbose_name_plural) for obj in exc.protected_objects})
        raise Conflict(f"{version} is still referred to by {', '.join(kinds)}") from None


def model_version_delete(*, user: User, version_id: object) -> None:
    version = model_version_get(user=user, pk=version_id)
    _require_owner(user=user, team=version.team, doing="deleting a model version")
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().select_related("registered_model").get(pk=version.pk)
        reports = version.reports.all()
        approved = _approved_reports(version.runs.all(), reports)
        drafts = sorted(str(pk) for pk in reports.values_list("pk", flat=True))
        children = [str(v) for v in ModelVersion.objects.filter(parent=version)] if hasattr(version, "parent") else []
        _refuse_if_used(what=str(version), runs=version.runs.all(), approved=approved, drafts=drafts, children=children)
        details, pk, team = _artifact_details(version), version.pk, version.team
        keys = [k for k in (version.storage_key, getattr(version, "weights_storage_key", ""),
                            getattr(version, "tokenizer_storage_key", "")) if k]  # fmt: skip
        _delete(version)
        audit_record(
            actor=user, team=team, action="model_version.deleted", obj=("registry.modelversion", pk), details=details
        )
        _drop_unshared(keys)


def dataset_version_delete(*, user: User, version_id: object) -> None:
    version = dataset_version_get(user=user, pk=version_id)
    _require_owner(user=user, team=version.team, doing="deleting a data set version")
    with transaction.atomic():
        version = DatasetVersion.objects.select_for_update().select_related("dataset").get(pk=version.pk)
        approved = _approved_reports(version.runs.all())
        drafts = sorted(
            {
                str(pk)
                for pk in version.runs.filter(report_runs__isnull=False).values_list(
                    "report_runs__report_id", flat=True
                )
            }
        )
        _refuse_if_used(what=str(version), runs=version.runs.all(), approved=approved, drafts=drafts)
        details, pk, team = _artifact_details(version), version.pk, version.team
        key = version.storage_key
        _delete(version)
        audit_record(
            actor=user,
            team=team,
            action="dataset_version.deleted",
            obj=("registry.datasetversion", pk),
            details=details,
        )
        _drop_unshared([key])
