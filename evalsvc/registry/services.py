"""Registration of model and data set versions.

Order matters for "nothing half-written": validate from the temporary file,
then store the bytes under their content address, then create the rows in one
transaction; if the rows fail, bytes this call wrote are removed again.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max

from evalsvc.core.exceptions import Conflict, ValidationFailed
from evalsvc.teams.models import Team
from evalsvc.teams.selectors import require_write
from workers.engine.datasets import inspect_dataset, validate_label_column
from workers.engine.errors import EngineError
from workers.engine.formats import inspect_model

from .models import Dataset, DatasetFormat, DatasetVersion, ModelFormat, ModelVersion, RegisteredModel
from .storage import blob_delete, blob_store, hash_file
from .uploads import clean_filename

_MODEL_EXTENSIONS = {".onnx": ModelFormat.ONNX}
_DATASET_EXTENSIONS = {".csv": DatasetFormat.CSV, ".parquet": DatasetFormat.PARQUET, ".pq": DatasetFormat.PARQUET}


def _resolve_format(requested: str | None, filename: str, choices: type, extensions: dict[str, str], what: str) -> str:
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


def _store_then_create(*, path: str, sha256: str, create: Callable[[str], Any]) -> Any:
    key, created = blob_store(path=path, sha256=sha256)
    try:
        with transaction.atomic():
            return create(key)
    except BaseException:
        if created:
            blob_delete(key)
        raise


def _duplicate(model: type, *, team: Team, sha256: str) -> Any | None:
    return model.objects.filter(team=team, sha256=sha256).first()


def model_version_register(
    *,
    user: Any,
    team: Team,
    name: str,
    path: str,
    filename: str,
    format: str | None = None,
    notes: str = "",
    description: str = "",
) -> ModelVersion:
    """Validate a model file and register it as the next version of model `name`."""
    require_write(user=user, team=team)
    name = _validate_name(name, "model")
    filename = clean_filename(filename)
    fmt = _resolve_format(format, filename, ModelFormat, _MODEL_EXTENSIONS, "model")
    sha256, size = hash_file(path)
    if size == 0:
        raise ValidationFailed("the file is empty")
    existing = _duplicate(ModelVersion, team=team, sha256=sha256)
    if existing is not None:
        raise Conflict(
            f"identical bytes are already registered as {existing} (sha256 {sha256[:12]}…)",
            extra={"existing_id": str(existing.id), "sha256": sha256},
        )
    try:
        info = inspect_model(path, fmt)
    except EngineError as exc:
        raise ValidationFailed(exc.message) from None

    def create(key: str) -> ModelVersion:
        registered, _ = RegisteredModel.objects.get_or_create(
            team=team, name=name, defaults={"description": description}
        )
        registered = RegisteredModel.objects.select_for_update().get(pk=registered.pk)
        latest = registered.versions.aggregate(v=Max("version"))["v"] or 0
        return ModelVersion.objects.create(
            team=team,
            registered_model=registered,
            version=latest + 1,
            format=fmt,
            sha256=sha256,
            size_bytes=size,
            storage_key=key,
            original_filename=filename,
            notes=notes,
            created_by=user,
            inputs=[_tensor(t) for t in info.inputs],
            outputs=[_tensor(t) for t in info.outputs],
            opset=info.opset,
            ir_version=info.ir_version,
            producer_name=info.producer_name,
            producer_version=info.producer_version,
            class_labels=list(info.class_labels) if info.class_labels is not None else None,
        )

    try:
        return _store_then_create(path=path, sha256=sha256, create=create)
    except IntegrityError:  # a concurrent upload of the same bytes
        raise Conflict("identical bytes were registered at the same moment; reload to see them") from None


def _tensor(spec: Any) -> dict[str, Any]:
    return {"name": spec.name, "dtype": spec.dtype, "shape": list(spec.shape) if spec.shape is not None else None}


def dataset_version_register(
    *,
    user: Any,
    team: Team,
    name: str,
    path: str,
    filename: str,
    format: str | None = None,
    label_column: str = "",
    notes: str = "",
    description: str = "",
) -> DatasetVersion:
    """Validate a data set file (streamed), infer its schema and register the next version."""
    require_write(user=user, team=team)
    name = _validate_name(name, "data set")
    filename = clean_filename(filename)
    fmt = _resolve_format(format, filename, DatasetFormat, _DATASET_EXTENSIONS, "data set")
    sha256, size = hash_file(path)
    if size == 0:
        raise ValidationFailed("the file is empty")
    existing = _duplicate(DatasetVersion, team=team, sha256=sha256)
    if existing is not None:
        raise Conflict(
            f"identical bytes are already registered as {existing} (sha256 {sha256[:12]}…)",
            extra={"existing_id": str(existing.id), "sha256": sha256},
        )
    try:
        info = inspect_dataset(path, fmt)
        if label_column:
            validate_label_column(info, label_column)
    except EngineError as exc:
        raise ValidationFailed(exc.message) from None

    def create(key: str) -> DatasetVersion:
        dataset, _ = Dataset.objects.get_or_create(team=team, name=name, defaults={"description": description})
        dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
        latest = dataset.versions.aggregate(v=Max("version"))["v"] or 0
        return DatasetVersion.objects.create(
            team=team,
            dataset=dataset,
            version=latest + 1,
            format=fmt,
            sha256=sha256,
            size_bytes=size,
            storage_key=key,
            original_filename=filename,
            notes=notes,
            created_by=user,
            rows=info.rows,
            columns=[{"name": c.name, "dtype": c.dtype, "missing": c.missing} for c in info.columns],
            label_column=label_column,
        )

    try:
        return _store_then_create(path=path, sha256=sha256, create=create)
    except IntegrityError:
        raise Conflict("identical bytes were registered at the same moment; reload to see them") from None
