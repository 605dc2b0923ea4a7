"""Registration of model and data set versions.

Order matters for "nothing half-written": validate from the temporary file,
then store the bytes under their content address, then create the rows in one
transaction; if the rows fail, bytes this call wrote are removed again. A
large upload is stored first and validated by a worker (``deferred``), which
removes the bytes again if the file is refused.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, TextChoices

from evalsvc.core.exceptions import Conflict, ValidationFailed
from evalsvc.core.users import User
from evalsvc.teams.models import Team
from evalsvc.teams.selectors import require_write
from workers.engine.errors import EngineError

from .curation import record_registration
from .deferred import validation_enqueue
from .inspection import (
    clean_feature_names,
    dataset_facts,
    model_facts,
    resolve_feature_names,
    validate_processing,
)
from .models import (
    ArtifactStatus,
    Dataset,
    DatasetFormat,
    DatasetVersion,
    ModelFormat,
    ModelVersion,
    RegisteredModel,
)
from .storage import blob_delete, blob_store, hash_file
from .uploads import clean_filename

__all__ = [
    "clean_feature_names",
    "dataset_version_register",
    "model_variant_register",
    "model_version_register",
    "registrations_all_or_nothing",
    "resolve_feature_names",
    "validate_processing",
]

_MODEL_EXTENSIONS = {
    ".onnx": ModelFormat.ONNX,
    ".pt": ModelFormat.TORCHSCRIPT,
    ".torchscript": ModelFormat.TORCHSCRIPT,
    ".pt2": ModelFormat.TORCH_EXPORT,
    ".xml": ModelFormat.OPENVINO,
    ".tflite": ModelFormat.TFLITE,
}
_DATASET_EXTENSIONS = {
    ".csv": DatasetFormat.CSV,
    ".parquet": DatasetFormat.PARQUET,
    ".pq": DatasetFormat.PARQUET,
    ".zip": DatasetFormat.IMAGEFOLDER,
}


def _resolve_format(
    requested: str | None, filename: str, choices: type[TextChoices], extensions: Mapping[str, str], what: str
) -> str:
    if requested:
        value = requested.strip().lower()
        if value not in choices.values:
            supported = ", ".join(choices.values)
            raise ValidationFailed(f"unsupported {what} format {requested!r}; supported: {supported}")
        return value
    ext = os.path.splitext(filename)[1].lower()
    if ext in extensions:
        return extensions[ext]
    known = ", ".join(sorted(extensions))
    raise ValidationFailed(
        f"cannot tell the {what} format from the file name {filename!r}: use one of {known} or set 'format'"
    )


def _validate_name(name: str, what: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(f"a {what} name is required")
    if len(name) > 200:
        raise ValidationFailed(f"the {what} name is longer than 200 characters")
    return name


#: Blobs written inside `registrations_all_or_nothing`, removed again if its transaction fails.
_batch_written: ContextVar[list[str] | None] = ContextVar("_batch_written", default=None)


@contextmanager
def registrations_all_or_nothing() -> Iterator[None]:
    """Registrations made inside commit together with whatever else the block writes, or leave nothing.

    One transaction covers the rows; the blobs they stored are removed if it
    rolls back, so a job that fails after making its files registers none of them.
    """
    written: list[str] = []
    token = _batch_written.set(written)
    try:
        with transaction.atomic():
            yield
    except BaseException:
        for key in written:
            blob_delete(key)
        raise
    finally:
        _batch_written.reset(token)


def _store_then_create(*, files: list[tuple[str, str]], create: Callable[[list[str]], Any], move: bool = False) -> Any:
    """Store each (path, sha256) under its content address, then create the rows.

    If creating the rows fails, the blobs this call wrote are removed again.
    `move`: the files are the request's temporary files, moved into storage.
    """
    keys: list[str] = []
    written: list[str] = []
    try:
        for path, sha256 in files:
            key, created = blob_store(path=path, sha256=sha256, move=move)
            keys.append(key)
            if created:
                written.append(key)
        with transaction.atomic():
            made = create(keys)
    except BaseException:
        for key in written:
            blob_delete(key)
        raise
    batch = _batch_written.get()
    if batch is not None:
        batch.extend(written)
    return made


def _duplicate(model: type[DatasetVersion], *, team: Team, sha256: str) -> DatasetVersion | None:
    return model.objects.filter(team=team, sha256=sha256).exclude(status=ArtifactStatus.FAILED).first()


def model_version_register(
    *,
    user: User,
    team: Team,
    name: str,
    path: str,
    filename: str,
    format: str | None = None,
    notes: str = "",
    description: str = "",
    weights_path: str | None = None,
    tokenizer_path: str | None = None,
    processing: dict[str, Any] | None = None,
    parent: ModelVersion | None = None,
    variant: str = "",
    feature_names: list[str] | None = None,
    same_model_as: ModelVersion | None = None,
    sha256: str | None = None,
    defer_large: bool = False,
) -> ModelVersion:
    """Validate a model file (and its companions) and register it as the next version of model `name`.

    `feature_names` declares the data columns the model's input takes, in
    order; without it they come from a tabular processing spec or from the
    model file's metadata, and jobs match columns by position only when
    none of these names them.

    OpenVINO IR needs its weights (.bin) as `weights_path`; a text model's
    tokenizer.json comes as `tokenizer_path`; `processing` is the declared
    pre/post-processing spec, validated here so every later job can trust it.

    `sha256`: the file's digest if the caller already has it (the upload
    handler computes it while the body arrives). With `defer_large`, files
    above ``EVALSVC_INLINE_VALIDATION_BYTES`` are stored and registered as
    "validating", and a worker checks them (``deferred``); `path` is then
    moved into storage, not copied.
    """
    require_write(user=user, team=team)
    if same_model_as is not None and same_model_as.team_id != team.pk:
        raise ValidationFailed(f"same_model_as: {same_model_as} belongs to another team")
    name = _validate_name(name, "model")
    filename = clean_filename(filename)
    fmt = _resolve_format(format, filename, ModelFormat, _MODEL_EXTENSIONS, "model")
    sha256, size = (sha256, os.path.getsize(path)) if sha256 else hash_file(path)
    if size == 0:
        raise ValidationFailed("the file is empty")
    if fmt == ModelFormat.OPENVINO and not weights_path:
        raise ValidationFailed("an OpenVINO IR model needs its weights: upload the .bin file as 'weights'")
    if weights_path and fmt != ModelFormat.OPENVINO:
        raise ValidationFailed(f"a separate weights file is only used with OpenVINO IR, not {fmt}")
    weights_sha256, weights_size = hash_file(weights_path) if weights_path else ("", None)
    if weights_path and not weights_size:
        raise ValidationFailed("the weights file is empty")
    tokenizer_sha256 = hash_file(tokenizer_path)[0] if tokenizer_path else ""
    existing = (
        ModelVersion.objects.filter(team=team, sha256=sha256, weights_sha256=weights_sha256)
        .exclude(status=ArtifactStatus.FAILED)
        .first()
    )
    if existing is not None:
        raise Conflict(
            f"identical bytes are already registered as {existing} (sha256 {sha256[:12]}…)",
            extra={"existing_id": str(existing.id), "sha256": sha256},
        )
    deferred = defer_large and size + (weights_size or 0) > settings.EVALSVC_INLINE_VALIDATION_BYTES
    if deferred:
        # What needs no look at the big file is checked now; the file itself by a worker.
        try:
            spec = validate_processing(processing, tokenizer_path=tokenizer_path)
        except EngineError as exc:
            raise ValidationFailed(exc.message) from None
        facts: dict[str, Any] = {
            "processing": spec,
            "feature_names": clean_feature_names(feature_names) if feature_names is not None else None,
            "feature_names_source": "declared" if feature_names is not None else "",
            "status": ArtifactStatus.VALIDATING,
        }
    else:
        facts = model_facts(
            path=path,
            fmt=fmt,
            weights_path=weights_path,
            processing=processing,
            tokenizer_path=tokenizer_path,
            feature_names=feature_names,
        )

    files = [(path, sha256)]
    if weights_path:
        files.append((weights_path, weights_sha256))
    if tokenizer_path:
        files.append((tokenizer_path, tokenizer_sha256))

    def create(keys: list[str]) -> ModelVersion:
        registered, _ = RegisteredModel.objects.get_or_create(
            team=team, name=name, defaults={"description": description}
        )
        registered = RegisteredModel.objects.select_for_update().get(pk=registered.pk)
        latest = registered.versions.aggregate(v=Max("version"))["v"] or 0
        companions = iter(keys[1:])
        version = ModelVersion.objects.create(
            team=team,
            registered_model=registered,
            version=latest + 1,
            format=fmt,
            sha256=sha256,
            size_bytes=size,
            storage_key=keys[0],
            original_filename=filename,
            notes=notes,
            created_by=user,
            weights_sha256=weights_sha256,
            weights_storage_key=next(companions) if weights_path else "",
            weights_size_bytes=weights_size,
            tokenizer_sha256=tokenizer_sha256,
            tokenizer_storage_key=next(companions) if tokenizer_path else "",
            parent=parent,
            variant=variant,
            same_model_as=same_model_as,
            **facts,
        )
        if deferred:
            validation_enqueue(version)
        return version

    try:
        return _store_then_create(files=files, create=record_registration(create, user=user), move=deferred)
    except IntegrityError:  # a concurrent upload of the same bytes
        raise Conflict("identical bytes were registered at the same moment; reload to see them") from None


def dataset_version_register(
    *,
    user: User,
    team: Team,
    name: str,
    path: str,
    filename: str,
    format: str | None = None,
    label_column: str = "",
    notes: str = "",
    description: str = "",
    sha256: str | None = None,
    defer_large: bool = False,
) -> DatasetVersion:
    """Validate a data set file (streamed), infer its schema and register the next version.

    `sha256` and `defer_large` as for :func:`model_version_register`.
    """
    require_write(user=user, team=team)
    name = _validate_name(name, "data set")
    filename = clean_filename(filename)
    fmt = _resolve_format(format, filename, DatasetFormat, _DATASET_EXTENSIONS, "data set")
    if fmt == DatasetFormat.IMAGEFOLDER and not label_column:
        label_column = "label"  # the class folder each image sits in
    sha256, size = (sha256, os.path.getsize(path)) if sha256 else hash_file(path)
    if size == 0:
        raise ValidationFailed("the file is empty")
    existing = _duplicate(DatasetVersion, team=team, sha256=sha256)
    if existing is not None:
        raise Conflict(
            f"identical bytes are already registered as {existing} (sha256 {sha256[:12]}…)",
            extra={"existing_id": str(existing.id), "sha256": sha256},
        )
    deferred = defer_large and size > settings.EVALSVC_INLINE_VALIDATION_BYTES
    facts: dict[str, Any] = (
        {"rows": 0, "status": ArtifactStatus.VALIDATING}
        if deferred
        else dataset_facts(path=path, fmt=fmt, label_column=label_column)
    )

    def create(keys: list[str]) -> DatasetVersion:
        dataset, _ = Dataset.objects.get_or_create(team=team, name=name, defaults={"description": description})
        dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
        latest = dataset.versions.aggregate(v=Max("version"))["v"] or 0
        version = DatasetVersion.objects.create(
            team=team,
            dataset=dataset,
            version=latest + 1,
            format=fmt,
            sha256=sha256,
            size_bytes=size,
            storage_key=keys[0],
            original_filename=filename,
            notes=notes,
            created_by=user,
            label_column=label_column,
            **facts,
        )
        if deferred:
            validation_enqueue(version)
        return version

    try:
        return _store_then_create(files=[(path, sha256)], create=record_registration(create, user=user), move=deferred)
    except IntegrityError:
        raise Conflict("identical bytes were registered at the same moment; reload to see them") from None


def model_variant_register(
    *, user: User, parent: ModelVersion, path: str, variant: str, notes: str = ""
) -> ModelVersion:
    """Register a derived file (e.g. a quantized copy) as a new version linked to `parent`.

    Running the same derivation twice gives the same bytes: the version made
    the first time is returned instead of a duplicate.
    """
    sha256, _ = hash_file(path)
    existing = (
        ModelVersion.objects.filter(team=parent.team, sha256=sha256, weights_sha256="")
        .exclude(status=ArtifactStatus.FAILED)
        .first()
    )
    if existing is not None:
        return existing
    return model_version_register(
        user=user,
        team=parent.team,
        name=parent.registered_model.name,
        path=path,
        filename=f"{parent.registered_model.name}-v{parent.version}-{variant}.onnx",
        format=parent.format,
        notes=notes or f"{variant} variant of {parent}",
        processing=parent.processing,
        parent=parent,
        variant=variant,
        feature_names=parent.feature_names if parent.feature_names_source == "declared" else None,
    )
