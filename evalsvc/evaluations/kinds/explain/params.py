"""The `explain` kind's params: the method and its parameters, the rows, the baseline and the budget, checked at submission.

Refused with a message (400): an unknown method or method parameter, a
gradient method on a model with no differentiable form (an OpenVINO or
TFLite file, or an ONNX graph with operators onnx2torch cannot convert,
named), rows that do not exist, a filter the data set cannot answer, and a
budget that cannot be met (more model rows than ``max_model_rows``, or
exact Shapley values over too many columns).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from evalsvc.core.exceptions import ValidationFailed
from evalsvc.fleet.selectors import require_offer
from evalsvc.registry.deferred import require_ready
from evalsvc.registry.models import DatasetVersion, ModelVersion
from workers.catalog import BACKEND_NAMES
from workers.engine.errors import EngineError
from workers.engine.explain.budget import estimate_model_rows
from workers.engine.explain.params import METHODS, parse_method

from ..common import DEVICES
from .image_params import clean_image_params
from .text_params import clean_text_params

DIFFERENTIABLE_FORMATS = ("onnx", "torchscript", "torch_export")
FILTERS = ("misclassified", "predicted_class", "column_value")


class RowsParams(serializers.Serializer):
    indices = serializers.ListField(child=serializers.IntegerField(min_value=0), required=False, allow_empty=False)
    filter = serializers.ChoiceField(choices=FILTERS, required=False)
    value = serializers.JSONField(required=False)
    column = serializers.CharField(required=False)
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=20)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("indices" in attrs) == ("filter" in attrs):
            raise serializers.ValidationError("give either indices or a filter")
        return attrs


class ExplainParams(serializers.Serializer):
    method = serializers.CharField(help_text=f"One of: {', '.join(sorted(METHODS))}.")
    method_params = serializers.DictField(required=False, default=dict)
    rows = RowsParams(required=False, help_text='Rows to explain: {"indices": [...]} or {"filter": ...}.')
    global_rows = serializers.IntegerField(min_value=0, max_value=5000, default=50)
    baseline = serializers.ChoiceField(choices=["zeros", "mean", "median", "kmeans"], default="mean")
    background_k = serializers.IntegerField(min_value=1, max_value=200, default=10)
    time_budget_s = serializers.FloatField(min_value=0.1, required=False)
    max_model_rows = serializers.IntegerField(min_value=1, default=200_000_000)
    cohort_by = serializers.CharField(required=False, help_text='"label", "prediction" or a column name.')
    feature_columns = serializers.ListField(child=serializers.CharField(), required=False, allow_empty=False)
    label_column = serializers.CharField(required=False)
    reference_dataset = serializers.CharField(required=False, help_text="A data set version for attribution drift.")
    backend = serializers.CharField(default="onnxruntime")
    device = serializers.ChoiceField(choices=DEVICES, default="cpu")
    batch_size = serializers.IntegerField(min_value=1, max_value=1 << 20, default=8192)
    patch_size = serializers.IntegerField(
        min_value=1, max_value=1024, required=False, help_text="Image data sets: patch side in original pixels."
    )
    superpixels = serializers.IntegerField(
        min_value=2, max_value=2000, required=False,
        help_text="Image data sets: about this many SLIC superpixels per image as the features, instead of patches.",
    )  # fmt: skip


def _fail(message: str) -> None:
    raise ValidationFailed(message)


def clean_params(params: dict[str, Any], model: ModelVersion, dataset: DatasetVersion | None) -> dict[str, Any]:
    assert dataset is not None
    serializer = ExplainParams(data=params)
    if not serializer.is_valid():
        raise ValidationFailed("invalid params", extra={"errors": {"params": serializer.errors}})
    data = dict(serializer.validated_data)
    data["rows"] = dict(data.get("rows") or {"indices": [0]})
    try:
        info, method_params = parse_method(data["method"], data["method_params"])
    except EngineError as exc:
        raise ValidationFailed(exc.message) from exc
    if data["backend"] not in BACKEND_NAMES:
        _fail(f"unknown backend {data['backend']!r}; available: {', '.join(BACKEND_NAMES)}")
    if dataset.format == "imagefolder":
        return clean_image_params(data, info, method_params, model, dataset)
    kind = ((model.processing or {}).get("input") or {}).get("kind")
    if kind == "image":
        _fail(
            f"this model declares a {kind} input; explain jobs on {kind} models need an image data set (a zip of class folders)"
        )
    if kind == "text":
        return clean_text_params(data, info, method_params, model, dataset)
    _refuse_image_only(data)
    columns = dataset.column_names
    label = data.get("label_column") or dataset.label_column
    data["label_column"] = label
    features = data.get("feature_columns") or [c for c in columns if c != label]
    missing = [c for c in features if c not in columns]
    if missing:
        _fail(f"feature columns not in data set {dataset}: {', '.join(missing)}")
    _check_rows(data["rows"], dataset, label, columns)
    _check_cohort(data.get("cohort_by"), dataset, label, columns)
    if info.kind == "gradient":
        _check_differentiable(info.name, model)
    if data.get("time_budget_s") is not None and info.name != "kernel_shap":
        _fail("a time budget chooses KernelSHAP's sample count: use it with method kernel_shap")
    if data.get("reference_dataset"):
        _check_reference(data["reference_dataset"], dataset, features)
    n_rows = len(data["rows"].get("indices") or []) or data["rows"].get("limit", 20)
    try:
        estimate = estimate_model_rows(
            info.name,
            method_params,
            rows=n_rows + data["global_rows"],
            features=len(features),
            background_rows=data["background_k"],
        )
    except EngineError as exc:
        raise ValidationFailed(exc.message) from exc
    if info.name == "exact_shapley" and len(features) > 16:
        _fail(f"exact Shapley values need 2**{len(features)} coalitions per row; use at most 16 columns or kernel_shap")
    if estimate > data["max_model_rows"]:
        _fail(
            f"this explanation would evaluate about {estimate:,} model rows, more than max_model_rows "
            f"({data['max_model_rows']:,}); explain fewer rows, lower the method's sample count or the background"
        )
    data["estimated_model_rows"] = estimate
    data["method_params"] = method_params.__dict__
    return data


def _refuse_image_only(data: dict[str, Any]) -> None:
    for key in ("patch_size", "superpixels"):
        if data.get(key) is not None:
            _fail(f"{key} applies to image data sets; this data set is tabular")


def _check_cohort(cohort: str | None, dataset: DatasetVersion, label: str | None, columns: list[str]) -> None:
    if cohort and cohort not in ("label", "prediction") and cohort not in columns:
        _fail(f"cohort_by {cohort!r} is neither label, prediction nor a column of data set {dataset}")
    if cohort == "label" and not label:
        _fail(f"cohorts by label need a label column; data set {dataset} has none")


def _check_reference(ref_id: str, dataset: DatasetVersion, features: list[str]) -> None:
    try:
        ref = DatasetVersion.objects.filter(pk=ref_id, team=dataset.team).first()
    except (ValueError, DjangoValidationError):  # not an id at all
        ref = None
    if ref is None:
        _fail(f"reference data set {ref_id} does not exist")
        return
    require_ready(ref)
    missing = [c for c in features if c not in ref.column_names]
    if missing:
        _fail(f"the reference data set lacks the feature columns {', '.join(missing)}")


def _check_rows(rows: dict[str, Any], dataset: DatasetVersion, label: str | None, columns: list[str]) -> None:
    if "indices" in rows:
        bad = [i for i in rows["indices"] if i >= dataset.rows]
        if bad:
            _fail(
                f"rows {', '.join(map(str, bad[:5]))} do not exist: data set {dataset} has {dataset.rows} rows "
                f"(0-{dataset.rows - 1})"
            )
        return
    if rows["filter"] == "misclassified" and not label:
        _fail(f"choosing misclassified rows needs a label column; data set {dataset} has none")
    if rows["filter"] in ("predicted_class", "column_value") and "value" not in rows:
        _fail(f"the {rows['filter']} filter needs a value")
    if rows["filter"] == "column_value" and rows.get("column") not in columns:
        _fail(f"the column_value filter needs a column of data set {dataset}; {rows.get('column')!r} is not one")


def _check_differentiable(method: str, model: ModelVersion) -> None:
    if model.format not in DIFFERENTIABLE_FORMATS:
        _fail(
            f"{method} is a gradient method and needs a differentiable PyTorch form; a {model.format} model has none "
            "(upload TorchScript, torch.export or ONNX, or choose a perturbation method such as kernel_shap)"
        )
    if model.format == "onnx":
        import onnx

        from evalsvc.registry.storage import blob_local_path
        from workers.engine.explain.torch_form import onnx2torch_unsupported

        path = blob_local_path(key=model.storage_key, sha256=model.sha256)
        missing = onnx2torch_unsupported(onnx.load(path, load_external_data=False))
        if missing:
            _fail(
                f"{method} needs this ONNX model converted to PyTorch, and onnx2torch has no converter for "
                f"{', '.join(missing)}; choose a perturbation method such as kernel_shap"
            )


def route(params: dict[str, Any], model: ModelVersion) -> str:
    offer = require_offer(backend=params["backend"], device=params["device"], precision=None, model_format=model.format)
    return offer.queue
