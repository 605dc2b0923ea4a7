"""Stored versions → the engine's view of them (local files as frozen dataclasses).

This is the tasks' side of the boundary: the web side stores versions and
never builds engine types; a task turns a version into a ``ModelSpec`` or a
``DatasetRef`` (fetching from S3 into the local cache if need be) and hands
that to the engine.
"""

from __future__ import annotations

from evalsvc.registry.models import DatasetVersion, ModelVersion
from evalsvc.registry.storage import blob_local_path
from workers.engine.types import DatasetRef, ModelSpec


def model_spec(version: ModelVersion) -> ModelSpec:
    """The engine's view of a stored model version (a local file; fetched from S3 if need be)."""
    path = blob_local_path(key=version.storage_key, sha256=version.sha256)
    weights = (
        blob_local_path(key=version.weights_storage_key, sha256=version.weights_sha256)
        if version.weights_storage_key
        else None
    )
    return ModelSpec(path=path, format=version.format, sha256=version.sha256, weights_path=weights)


def tokenizer_path(version: ModelVersion) -> str | None:
    if not version.tokenizer_storage_key:
        return None
    return blob_local_path(key=version.tokenizer_storage_key, sha256=version.tokenizer_sha256)


def dataset_ref(version: DatasetVersion, *, label_column: str | None = None) -> DatasetRef:
    path = blob_local_path(key=version.storage_key, sha256=version.sha256)
    return DatasetRef(
        path=path,
        format=version.format,
        sha256=version.sha256,
        columns=tuple(version.column_names),
        label_column=label_column or version.label_column or None,
        rows=version.rows,
    )
