"""The `explain` kind's params on an image data set (a zip of class folders): patches of the original images.

Refused with a message (400): a model without an image processing spec, a
gradient method (image explanations run perturbation methods over patches;
on a model with no differentiable form the message says so), a baseline
other than zeros or mean, a patch larger than the images, occlusion
windows (the patch size is the window), filters by a column, tabular-only
options, and a budget that cannot be met.
"""

from __future__ import annotations

from typing import Any

from evalsvc.core.exceptions import ValidationFailed
from evalsvc.registry.models import DatasetVersion, ModelVersion
from workers.engine.explain.budget import estimate_model_rows
from workers.engine.explain.params import Common, MethodInfo

DEFAULT_PATCH = 8
#: Gradient methods on images (model inputs on the original pixel grid).
IMAGE_GRADIENT_METHODS = ("integrated_gradients", "saliency")
#: What a removed patch becomes: black, or the image's mean colour.
IMAGE_BASELINES = ("zeros", "mean")
TABULAR_ONLY = ("time_budget_s", "cohort_by", "feature_columns", "reference_dataset")


def _fail(message: str) -> None:
    raise ValidationFailed(message)


def clean_image_params(
    data: dict[str, Any], info: MethodInfo, method_params: Common, model: ModelVersion, dataset: DatasetVersion
) -> dict[str, Any]:
    spec = (model.processing or {}).get("input") or {}
    if spec.get("kind") != "image":
        _fail(
            f"data set {dataset} holds images; explaining it needs a model with an image processing spec "
            "(the model's input steps), and this model has none"
        )
    if info.kind == "gradient":
        _check_image_gradient(info, model, spec)
    if info.name == "exact_shapley":
        _fail("exact_shapley enumerates every coalition of patches; use kernel_shap on images")
    if info.name == "occlusion" and (method_params.window != 1 or method_params.stride != 1):  # type: ignore[attr-defined]
        _fail("on images the occluded window is one patch: set patch_size instead of window and stride")
    given = [k for k in TABULAR_ONLY if data.get(k) is not None]
    if given:
        _fail(f"{', '.join(given)} apply to tabular data sets; this data set holds images")
    if data["baseline"] not in IMAGE_BASELINES:
        _fail(
            f"image explanations replace patches by a zeros (black) or mean (mean colour) baseline, not {data['baseline']!r}"
        )
    rows = data["rows"]
    if "indices" in rows:
        bad = [i for i in rows["indices"] if i >= dataset.rows]
        if bad:
            _fail(
                f"images {', '.join(map(str, bad[:5]))} do not exist: data set {dataset} has {dataset.rows} images "
                f"(0-{dataset.rows - 1})"
            )
    elif rows["filter"] == "column_value":
        _fail("image data sets have no columns to filter by; choose rows by index, misclassified or predicted_class")
    elif rows["filter"] == "predicted_class" and "value" not in rows:
        _fail("the predicted_class filter needs a value")
    superpixels = data.get("superpixels")
    if superpixels is not None and data.get("patch_size") is not None:
        _fail("give patch_size or superpixels, not both: the features are square patches or SLIC superpixels")
    patch = data.get("patch_size") or DEFAULT_PATCH
    data["patch_size"] = None if superpixels else patch
    side = _model_side(spec)
    n_rows = len(rows.get("indices") or []) or rows.get("limit", 20)
    n_rows += min(data["global_rows"], dataset.rows)
    features = superpixels or max(1, -(-(side or 64) // patch)) ** 2
    estimate = estimate_model_rows(info.name, method_params, rows=n_rows, features=features, background_rows=1)
    if estimate > data["max_model_rows"]:
        _fail(
            f"this explanation would evaluate about {estimate:,} model rows, more than max_model_rows "
            f"({data['max_model_rows']:,}); explain fewer images, a larger patch_size or a lower sample count"
        )
    data["estimated_model_rows"] = estimate
    data["method_params"] = method_params.__dict__
    data["label_column"] = None
    return data


def _check_image_gradient(info: MethodInfo, model: ModelVersion, spec: dict[str, Any]) -> None:
    if model.format not in ("onnx", "torchscript", "torch_export"):
        _fail(
            f"{info.name} is a gradient method and needs a differentiable PyTorch form; a {model.format} model "
            "has none (choose a perturbation method such as kernel_shap or occlusion)"
        )
    if info.name not in IMAGE_GRADIENT_METHODS:
        _fail(
            f"gradient methods on images are {', '.join(IMAGE_GRADIENT_METHODS)}; {info.name} is not (or choose "
            "a perturbation method: kernel_shap, occlusion, feature_ablation, shapley_value_sampling, lime, "
            "captum_kernel_shap, shap_kernel, shap_permutation or shap_partition)"
        )
    if spec.get("resize") or spec.get("center_crop"):
        _fail(
            f"{info.name} attributes the model input to the original pixels only when the preprocessing keeps "
            "the pixel grid; this model's spec resizes or crops (choose a perturbation method)"
        )
    from .params import _check_differentiable  # the ONNX operators onnx2torch converts

    _check_differentiable(info.name, model)


def _model_side(spec: dict[str, Any]) -> int | None:
    """The side of the images the model sees, where the spec fixes it (crop or exact resize)."""
    size = spec.get("center_crop") or (spec.get("resize") if isinstance(spec.get("resize"), list) else None)
    return int(min(size)) if size else None
