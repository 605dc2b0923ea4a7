"""The `drift` kind's params: a reference data set version, the columns, the detectors and their settings."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from evalsvc.core.exceptions import ValidationFailed
from evalsvc.fleet.selectors import require_offer
from evalsvc.registry.deferred import require_ready
from evalsvc.registry.models import DatasetVersion, ModelVersion

KINDS = ("numeric", "categorical", "binary")


class EmbeddingParams(serializers.Serializer):
    # A declared field named like Field.source: DRF's metaclass takes it out of the class attributes.
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=["penultimate", "input"],
        default="penultimate",
        help_text="The model's penultimate layer (read as an extra ONNX output), or its prepared input.",
    )
    layer = serializers.CharField(
        required=False, help_text="The ONNX tensor to read (default: the input of the last dense layer)."
    )
    dim = serializers.IntegerField(min_value=2, max_value=512, default=32, help_text="Random projection's size.")
    rows = serializers.IntegerField(min_value=10, max_value=20_000, default=1000, help_text="Rows embedded per side.")


class DriftParams(serializers.Serializer):
    reference_dataset = serializers.UUIDField(help_text="The data set version the current one is compared with.")
    columns = serializers.ListField(
        child=serializers.CharField(), required=False, allow_empty=False, help_text="Defaults to every column."
    )
    column_kinds = serializers.DictField(child=serializers.ChoiceField(choices=KINDS), required=False)
    alpha = serializers.FloatField(min_value=1e-6, max_value=0.5, default=0.05)
    correction = serializers.ChoiceField(choices=["bonferroni", "fdr", "none"], default="bonferroni")
    numeric_test = serializers.ChoiceField(choices=["ks", "cvm"], default="ks")
    binary_test = serializers.ChoiceField(choices=["fisher", "chi2"], default="fisher")
    multivariate = serializers.ListField(
        child=serializers.ChoiceField(choices=["mmd", "lsdd", "classifier"]), required=False, default=list
    )
    max_per_side = serializers.IntegerField(min_value=10, max_value=20000, default=2000)
    n_permutations = serializers.IntegerField(min_value=0, max_value=10000, default=100)
    sample_rows = serializers.IntegerField(min_value=100, max_value=2_000_000, default=100_000)
    max_int_categories = serializers.IntegerField(min_value=0, max_value=1000, default=10)
    seed = serializers.IntegerField(min_value=0, default=0)
    prediction_drift = serializers.BooleanField(
        default=False, help_text="Also compare the model's predicted classes on both data sets."
    )
    prediction_rows = serializers.IntegerField(min_value=10, max_value=1_000_000, default=10_000)
    feature_columns = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        allow_empty=False,
        help_text="The model's input columns, for prediction drift (default: every column but the label).",
    )
    embedding = EmbeddingParams(
        required=False,
        help_text="Embedding drift: MMD on the model's embeddings of both data sets (images, text, tables).",
    )


def _check_embedding(data: dict[str, Any], model: ModelVersion, images: bool) -> None:
    embedding = data.get("embedding")
    if images and not embedding:
        raise ValidationFailed(
            'image data sets are compared through the model: give \'embedding\' (e.g. {"source": "penultimate"})'
        )
    if not embedding:
        return
    if embedding["source"] == "penultimate" and model.format != "onnx":
        raise ValidationFailed(
            f"embedding: the penultimate layer is read from ONNX models; this one is {model.format} "
            "(use source 'input')"
        )
    if images and not ((model.processing or {}).get("input") or {}).get("kind") == "image":
        raise ValidationFailed("embedding: the model version declares no image input (processing.input.kind 'image')")


def clean_params(params: dict[str, Any], model: ModelVersion, dataset: DatasetVersion | None) -> dict[str, Any]:
    assert dataset is not None
    serializer = DriftParams(data=params)
    if not serializer.is_valid():
        raise ValidationFailed("invalid params", extra={"errors": {"params": serializer.errors}})
    data = dict(serializer.validated_data)
    reference = DatasetVersion.objects.filter(pk=data["reference_dataset"], team_id=dataset.team_id).first()
    if reference is None:
        raise ValidationFailed("reference_dataset: no data set version with that id in this team")
    require_ready(reference)
    images = [v.format == "imagefolder" for v in (reference, dataset)]
    if any(images) and not all(images):
        raise ValidationFailed("an image data set is compared with another image data set, not with a table")
    _check_embedding(data, model, images=all(images))
    if all(images):
        for key in ("columns", "column_kinds", "multivariate", "feature_columns"):
            if data.get(key):
                raise ValidationFailed(f"{key}: image data sets have no columns to compare; drift is on embeddings")
        if data.get("prediction_drift"):
            raise ValidationFailed("prediction_drift compares tables' predictions; for images use 'embedding'")
        return {**data, "reference_dataset": str(reference.pk), "reference_label": str(reference), "columns": [],
                "column_kinds": {}, "images": True}  # fmt: skip
    columns = data.get("columns") or reference.column_names
    for side, version in (("reference", reference), ("current", dataset)):
        missing = [c for c in columns if c not in version.column_names]
        if missing:
            raise ValidationFailed(f"columns not in the {side} data set {version}: {', '.join(missing)}")
    unknown = [c for c in data.get("column_kinds", {}) if c not in columns]
    if unknown:
        raise ValidationFailed(f"column_kinds names columns that are not compared: {', '.join(unknown)}")
    for name in data.get("feature_columns") or []:
        for side, version in (("reference", reference), ("current", dataset)):
            if name not in version.column_names:
                raise ValidationFailed(f"feature column {name!r} is not in the {side} data set {version}")
    if len(set(data["multivariate"])) != len(data["multivariate"]):
        raise ValidationFailed("multivariate: each detector once")
    return {
        **data,
        "reference_dataset": str(reference.pk),
        "reference_label": str(reference),
        "columns": list(columns),
        "column_kinds": dict(data.get("column_kinds", {})),
    }


def route(params: dict[str, Any], model: ModelVersion) -> str:
    # No model runs; any live CPU worker takes it.
    return require_offer(backend="onnxruntime", device="cpu").queue
