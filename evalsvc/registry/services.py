"""Registration of model and data set versions.

Order matters for "nothing half-written": validate from the temporary file,
then store the bytes under their content address, then create the rows in one
transaction; if the rows fail, bytes this call wrote are removed again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max, TextChoices

from evalsvc.core.exceptions import Conflict, ValidationFailed
from evalsvc.teams.models import Team
from evalsvc.teams.selectors import require_write
from workers.engine.datasets import inspect_dataset, validate_label_column
from workers.engine.errors import EngineError
from workers.engine.formats import inspect_model

from .curation import record_registration
from .models import Dataset, DatasetFormat, DatasetVersion, ModelFormat, ModelVersion, RegisteredModel
from .storage import blob_delete, blob_store, hash_file
from .uploads import clean_filename

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


def _store_then_create(*, files: list[tuple[str, str]], create: Callable[[list[str]], Any]) -> Any:
    """Store each (path, sha256) under its content address, then create the rows.

    If creating the rows fails, the blobs this call wrote are removed again.
    """
    keys: list[str] = []
    written: list[str] = []
    try:
        for path, sha256 in files:
            key, created = blob_store(path=path, sha256=sha256)
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
    weights_path: str | None = None,
    tokenizer_path: str | None = None,
    processing: dict[str, Any] | None = None,
    parent: ModelVersion | None = None,
    variant: str = "",
    feature_names: list[str] | None = None,
    same_model_as: ModelVersion | None = None,
) -> ModelVersion:
    """Validate a model file (and its companions) and register it as the next version of model `name`.

    `feature_names` declares the data columns the model's input takes, in
    order; without it they come from a tabular processing spec or from the
    model file's metadata, and jobs match columns by position only when
    none of these names them.

    OpenVINO IR needs its weights (.bin) as `weights_path`; a text model's
    tokenizer.json comes as `tokenizer_path`; `processing` is the declared
    pre/post-processing spec, validated here so every later job can trust it.
    """
    require_write(user=user, team=team)
    if same_model_as is not None and same_model_as.team_id != team.pk:
        raise ValidationFailed(f"same_model_as: {same_model_as} belongs to another team")
    name = _validate_name(name, "model")
    filename = clean_filename(filename)
    fmt = _resolve_format(format, filename, ModelFormat, _MODEL_EXTENSIONS, "model")
    sha256, size = hash_file(path)
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
    existing = ModelVersion.objects.filter(team=team, sha256=sha256, weights_sha256=weights_sha256).first()
    if existing is not None:
        raise Conflict(
            f"identical bytes are already registered as {existing} (sha256 {sha256[:12]}…)",
            extra={"existing_id": str(existing.id), "sha256": sha256},
        )
    try:
        info = inspect_model(path, fmt, weights_path=weights_path)
        spec = validate_processing(processing, tokenizer_path=tokenizer_path)
    except EngineError as exc:
        raise ValidationFailed(exc.message) from None
    _refuse_two_label_maps(info.class_labels, spec)
    features, features_source = resolve_feature_names(
        declared=feature_names, processing=spec, from_model=info.feature_names, inputs=info.inputs
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
        return ModelVersion.objects.create(
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
            inputs=[_tensor(t) for t in info.inputs],
            outputs=[_tensor(t) for t in info.outputs],
            opset=info.opset,
            ir_version=info.ir_version,
            producer_name=info.producer_name,
            producer_version=info.producer_version,
            class_labels=list(info.class_labels) if info.class_labels is not None else None,
            feature_names=features,
            feature_names_source=features_source,
            weights_sha256=weights_sha256,
            weights_storage_key=next(companions) if weights_path else "",
            weights_size_bytes=weights_size,
            tokenizer_sha256=tokenizer_sha256,
            tokenizer_storage_key=next(companions) if tokenizer_path else "",
            processing=spec,
            parent=parent,
            variant=variant,
            same_model_as=same_model_as,
        )

    try:
        return _store_then_create(files=files, create=record_registration(create, user=user))
    except IntegrityError:  # a concurrent upload of the same bytes
        raise Conflict("identical bytes were registered at the same moment; reload to see them") from None


def _refuse_two_label_maps(class_labels: Any, spec: dict[str, Any] | None) -> None:
    """A model that names its classes and a spec that names them again: which would a report believe?"""
    declared = ((spec or {}).get("output") or {}).get("labels")
    if class_labels is None or declared is None:
        return
    shown = ", ".join(repr(label) for label in list(class_labels)[:5]) + (", …" if len(class_labels) > 5 else "")
    raise ValidationFailed(
        f"the model names its classes itself (ONNX-ML class labels: {shown}) and the processing spec's "
        "output.labels gives a second label map; keep one: remove output.labels (the model's own labels "
        "are used), or export the model without class labels"
    )


def clean_feature_names(value: Any) -> list[str]:
    """A list of distinct, non-empty column names, or a 400 saying what is wrong."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValidationFailed("feature_names must be a non-empty list of column names")
    names = [v.strip() for v in value]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValidationFailed(f"feature_names repeats {', '.join(repeated)}")
    return names


def resolve_feature_names(
    *, declared: list[str] | None, processing: dict[str, Any] | None, from_model: Any, inputs: Any
) -> tuple[list[str] | None, str]:
    """The model's feature columns and their source: declared, its tabular processing spec, or its file."""
    spec_columns = ((processing or {}).get("input") or {}).get("feature_columns")
    if declared is not None:
        names = clean_feature_names(declared)
        if spec_columns and list(spec_columns) != names:
            raise ValidationFailed(
                f"feature_names ({', '.join(names)}) differ from the columns the processing spec reads "
                f"({', '.join(spec_columns)}); leave feature_names out"
            )
        width = _input_width(inputs)
        if not spec_columns and width is not None and width != len(names):
            raise ValidationFailed(
                f"the model's input takes {width} features but {len(names)} feature_names were given"
            )
        return names, "declared"
    if spec_columns:
        return list(spec_columns), "processing"
    if from_model:
        return list(from_model), "model"
    return None, ""


def _input_width(inputs: Any) -> int | None:
    """Features of a single rank-2 input (a TensorSpec, or its stored dict), if fixed."""
    if len(inputs) != 1:
        return None
    shape = inputs[0].get("shape") if isinstance(inputs[0], dict) else inputs[0].shape
    if shape is None or len(shape) != 2:
        return None
    return shape[1] if isinstance(shape[1], int) else None


def validate_processing(processing: dict[str, Any] | None, *, tokenizer_path: str | None) -> dict[str, Any] | None:
    """Check a declared processing spec (and the tokenizer it needs); return its normalised form."""
    if processing is None:
        if tokenizer_path:
            raise ValidationFailed("a tokenizer was uploaded but no text processing spec says how to use it")
        return None
    from workers.engine.processing import load_tokenizer, parse_processing_spec

    spec = parse_processing_spec(processing)
    wants_text = getattr(spec.input, "kind", None) == "text"
    if wants_text and not tokenizer_path:
        raise ValidationFailed("a text processing spec needs the model's tokenizer.json uploaded as 'tokenizer'")
    if tokenizer_path:
        if not wants_text:
            raise ValidationFailed("a tokenizer was uploaded but the processing spec's input is not text")
        load_tokenizer(tokenizer_path)
    return spec.to_dict()


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
    if fmt == DatasetFormat.IMAGEFOLDER and not label_column:
        label_column = "label"  # the class folder each image sits in
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

    def create(keys: list[str]) -> DatasetVersion:
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
            storage_key=keys[0],
            original_filename=filename,
            notes=notes,
            created_by=user,
            rows=info.rows,
            columns=[{"name": c.name, "dtype": c.dtype, "missing": c.missing} for c in info.columns],
            label_column=label_column,
            extra=dict(info.extra or {}),
        )

    try:
        return _store_then_create(files=[(path, sha256)], create=record_registration(create, user=user))
    except IntegrityError:
        raise Conflict("identical bytes were registered at the same moment; reload to see them") from None


def model_variant_register(
    *, user: Any, parent: ModelVersion, path: str, variant: str, notes: str = ""
) -> ModelVersion:
    """Register a derived file (e.g. a quantized copy) as a new version linked to `parent`.

    Running the same derivation twice gives the same bytes: the version made
    the first time is returned instead of a duplicate.
    """
    sha256, _ = hash_file(path)
    existing = ModelVersion.objects.filter(team=parent.team, sha256=sha256, weights_sha256="").first()
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
