"""The ``explain`` job on an image data set (a zip of class folders): patch attributions over the original images.

Each explained image is cut into square patches of ``patch_size`` pixels of
the ORIGINAL image; a method sees one feature per patch (1: the patch as it
is, 0: the patch replaced by the baseline, black or the image's mean
colour). The forward function builds the perturbed original images, runs
the model's declared preprocessing on them (resize, crop, scale, normalise,
layout) and calls the registered backend in large batches, so the
attributions are in the pixels the user sees, whatever the model's input.
Only perturbation methods run here. Per image the result keeps the patch
grid of attributions, a thumbnail of the original (at most
:data:`THUMB_SIDE` pixels a side) and the heatmap at the thumbnail's size,
for the overlay drawn on the run page.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from workers.engine.arrays import Array
from workers.engine.errors import EngineError
from workers.engine.explain.forward import Forward, forward_from_predict
from workers.engine.explain.image import feature_mask, heatmap, patch_mask, superpixel_mask
from workers.engine.explain.methods import Inputs, run_method
from workers.engine.explain.params import parse_method
from workers.engine.explain.selection import RowFilter, global_importance, select_rows
from workers.engine.explain.trust import additivity_errors, completeness_errors, flags, infidelity
from workers.engine.types import DatasetRef, ModelSpec, ProgressCallback

__all__ = ["IMAGE_BASELINES", "THUMB_SIDE", "explain_image", "run_image_explanation"]

#: Longest side of the thumbnail (and heatmap) kept per explained image.
THUMB_SIDE = 64
#: Images read at most to choose rows by a filter.
MAX_FILTER_IMAGES = 5000
IMAGE_BASELINES = ("zeros", "mean")


def _baseline_image(image: Array, baseline: str) -> Array:
    if baseline == "zeros":
        return np.zeros_like(image)
    if baseline == "mean":
        return np.broadcast_to(image.reshape(-1, image.shape[-1]).mean(axis=0).round(), image.shape).astype(np.uint8)
    raise EngineError(f"image explanations take the baseline zeros or mean, not {baseline!r}")


def patch_forward(image: Array, base: Array, mask: Array, prepare: Any, model: Forward) -> Forward:
    """A :class:`Forward` over patch coalitions ``(n, P)`` in [0, 1] for one original image.

    ``prepare`` maps a list of (H, W, 3) uint8 images to the model's input
    batch. Without resize or crop the preprocessing is per pixel, so the
    image and its baseline are prepared once and mixed in model space.
    """
    ids = mask.reshape(-1)
    pre_x, pre_b = prepare([image]), prepare([base])
    same_grid = getattr(prepare, "per_pixel", False)
    layout_nchw = getattr(prepare, "layout", "nchw") == "nchw"

    def fn(z: Array) -> Array:
        keep = z.astype(np.float64)[:, ids].reshape(len(z), *image.shape[:2])
        if same_grid:
            k = keep[:, None] if layout_nchw else keep[..., None]
            return np.asarray((pre_b + k * (pre_x - pre_b)).astype(pre_x.dtype))
        mixed = base[None] + keep[..., None] * (image[None].astype(np.float64) - base[None])
        return np.asarray(prepare(list(np.clip(mixed.round(), 0, 255).astype(np.uint8))))

    return Forward(lambda z: model(fn(z)), batch_size=model.batch_size, dtype=np.float64)


def explain_image(
    info: Any,
    params: Any,
    image: Array,
    target: int,
    *,
    patch: int,
    baseline: str,
    prepare: Any,
    model: Forward,
    superpixels: int | None = None,
) -> dict[str, Any]:
    """One image's attributions (``values``) over its patches, or its SLIC superpixels; output, base value, grid."""
    h, w = image.shape[:2]
    mask = superpixel_mask(image, superpixels) if superpixels else patch_mask(h, w, patch)
    n = int(mask.max()) + 1
    fwd = patch_forward(image, _baseline_image(image, baseline), mask, prepare, model)
    ones, zeros = np.ones((1, n)), np.zeros((1, n))
    inputs = Inputs(ones, zeros, zeros, np.ones(1), None, np.array([target]))
    a = run_method(info, params, inputs, forward=fwd)
    base_value = None if a.base_values is None else float(a.base_values[0])
    return {
        "values": a.values[0],
        "output": float(a.outputs[0]),
        "base_value": base_value,
        "mask": mask,
        "grid": None if superpixels else (-(-h // patch), -(-w // patch)),
    }


#: Gradient methods on images: attributions per element of the model input, summed over each feature's pixels.
IMAGE_GRADIENT_METHODS = ("integrated_gradients", "saliency")


def explain_image_gradient(
    info: Any,
    params: Any,
    image: Array,
    target: int,
    *,
    patch: int,
    baseline: str,
    prepare: Any,
    model: Forward,
    torch_form: Any,
    superpixels: int | None = None,
) -> dict[str, Any]:
    """A gradient method on the prepared image (the model input has the original's pixel grid), per feature.

    The input and the baseline image go through the declared preprocessing; captum's attributions per input
    element are summed over each patch's (or superpixel's) pixels and channels.
    """
    h, w = image.shape[:2]
    mask = superpixel_mask(image, superpixels) if superpixels else patch_mask(h, w, patch)
    x, base = prepare([image]), prepare([_baseline_image(image, baseline)])
    if x.shape[-2:] != (h, w) and x.shape[1:3] != (h, w):
        raise EngineError("gradient methods on images need preprocessing that keeps the pixel grid (no resize or crop)")
    groups = feature_mask(mask, tuple(x.shape[1:]), getattr(prepare, "layout", "nchw"))
    inputs = Inputs(x.astype(np.float64), base.astype(np.float64), base, np.ones(1), groups, np.array([target]))
    a = run_method(info, params, inputs, forward=model, torch_form=torch_form)
    return {
        "values": a.values[0],
        "output": float(a.outputs[0]),
        "base_value": None,
        "baseline_output": float(model(base)[0, target]),
        "delta": None if a.deltas is None else float(a.deltas[0]),
        "steps": None if a.steps is None else int(a.steps[0]),
        "mask": mask,
        "grid": None if superpixels else (-(-h // patch), -(-w // patch)),
    }


#: Removal perturbations per image for infidelity, and the share of the features each one removes.
INFIDELITY_DRAWS = 32
INFIDELITY_SHARE = 0.25


def removal_infidelity(
    image: Array,
    mask: Array,
    values: Array,
    target: int,
    *,
    baseline: str,
    prepare: Any,
    model: Forward,
    seed: int,
) -> tuple[float, float]:
    """captum's infidelity with removals: random sets of the features (a quarter each) replaced by the baseline.

    The attributions predict each removal's output change as the sum over the removed features; returns the
    mean squared error of that prediction and the mean squared output change (to scale it).
    """
    n = int(mask.max()) + 1
    fwd = patch_forward(image, _baseline_image(image, baseline), mask, prepare, model)
    rng = np.random.default_rng(seed)
    removed = (rng.random((1, INFIDELITY_DRAWS, n)) < INFIDELITY_SHARE).astype(np.float64)
    inf, change = infidelity(
        fwd, np.ones((1, n)), np.asarray(values)[None], np.array([target]), np.ones(n), noise=removed,
        baseline=np.zeros((1, n)),
    )  # fmt: skip
    return float(inf[0]), float(change[0])


def _thumb(image: Array, heat: Array) -> tuple[list[Any], list[Any]]:
    h, w = image.shape[:2]
    step = max(1, -(-max(h, w) // THUMB_SIDE))
    return image[::step, ::step].tolist(), np.round(heat[::step, ::step], 6).tolist()


def _prepare_fn(spec: Any) -> Any:
    from workers.engine.processing.image import prepare_images

    def prepare(images: list[Array]) -> Array:
        return prepare_images(images, spec)

    prepare.per_pixel = spec.resize is None and spec.center_crop is None  # type: ignore[attr-defined]
    prepare.layout = spec.layout  # type: ignore[attr-defined]
    return prepare


def _read_images(data: DatasetRef, upto: int) -> list[Any]:
    from workers.engine.imagefolder import iter_image_files

    files: list[Any] = []
    for batch in iter_image_files(data, 256):
        files.extend(batch)
        if len(files) >= upto:
            break
    return files[:upto]


def _image_trust(
    info: Any, done: list[dict[str, Any]], fidelity: list[tuple[float, float]], superpixels: int | None
) -> dict[str, Any]:
    """Additivity (SHAP family), IG completeness and removal infidelity over the explained images."""
    trust: dict[str, Any] = {"scores": {}, "details": {}, "flags": []}
    change = float(np.mean([c for _, c in fidelity])) if fidelity else 0.0
    trust["details"]["infidelity_absolute"] = float(np.mean([i for i, _ in fidelity])) if fidelity else None
    if not fidelity:
        trust["details"]["infidelity_note"] = "saliency gives slopes, not the effect of removing a feature"
    elif change > 0:
        trust["scores"]["infidelity"] = trust["details"]["infidelity_absolute"] / change
    else:
        trust["details"]["infidelity_note"] = "removing features did not change the output: nothing to compare"
    trust["details"]["infidelity_perturbations"] = (
        f"{INFIDELITY_DRAWS} random removals of a quarter of the {'superpixels' if superpixels else 'patches'} "
        f"per image, on the first {len(fidelity)} explained images"
    )
    deltas = [d for d in done if d.get("delta") is not None]
    if deltas:
        errs = completeness_errors(
            np.array([d["delta"] for d in deltas]), np.array([d["output"] for d in deltas]),
            np.array([d["baseline_output"] for d in deltas]),
        )  # fmt: skip
        trust["scores"]["completeness_error"] = float(errs.max())
        steps = [d["steps"] for d in deltas]
        trust["details"]["integration_steps"] = {"min": int(min(steps)), "max": int(max(steps))}
    if info.additive:
        additive = [d for d in done if d["base_value"] is not None]
        if additive:
            errs = np.concatenate(
                [
                    additivity_errors(d["values"][None], np.array([d["base_value"]]), np.array([d["output"]]))
                    for d in additive
                ]
            )
            trust["scores"]["additivity_error"] = float(errs.max())
    trust["flags"] = flags(trust["scores"])
    trust["details"]["not_computed"] = "sensitivity and stability are computed for tabular explanations"
    return trust


def run_image_explanation(
    model: ModelSpec,
    data: DatasetRef,
    request: Any,
    *,
    spec: Any,
    class_labels: list[Any] | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    from workers.engine.inference.registry import get_backend_class
    from workers.engine.processing.image import decode_image

    started = time.perf_counter()
    info, params = parse_method(request.method, request.method_params)
    gradient = info.kind == "gradient"
    if gradient and info.name not in IMAGE_GRADIENT_METHODS:
        raise EngineError(
            f"gradient methods on images: {', '.join(IMAGE_GRADIENT_METHODS)}; {info.name} runs on tabular data"
        )
    patch = int(request.patch_size)
    superpixels = getattr(request, "superpixels", None)
    rows = request.rows
    upto = max(max(rows["indices"]) + 1, request.global_rows) if "indices" in rows else MAX_FILTER_IMAGES
    files = _read_images(data, upto)
    if not files:
        raise EngineError("the data set has no images")
    prepare = _prepare_fn(spec)
    backend_cls = get_backend_class(request.backend)
    with backend_cls(model, device=request.device) as backend:
        from workers.engine.explain.pipeline import _output

        input_name, output_name = _output(backend)
        model_fwd = forward_from_predict(
            backend.predict, input_name=input_name, output_name=output_name, batch_size=request.batch_size,
            dtype=np.dtype(spec.dtype),
        )  # fmt: skip
        images = [decode_image(f.data, name=f.name) for f in files]
        outputs = np.concatenate([model_fwd(prepare(images[i : i + 256])) for i in range(0, len(images), 256)])
        predicted_idx = outputs.argmax(axis=1)
        labels = class_labels or list(range(outputs.shape[1]))
        predicted = np.array([str(labels[i]) if i < len(labels) else str(i) for i in predicted_idx], dtype=object)
        truth = np.array([f.label for f in files], dtype=object)
        rule = (
            RowFilter("indices", indices=tuple(int(i) for i in rows["indices"]), limit=0)
            if "indices" in rows
            else RowFilter(rows.get("filter", ""), value=rows.get("value"), limit=int(rows.get("limit", 20)))
        )
        if rule.kind == "column_value":
            raise EngineError("image data sets have no columns to filter by; choose rows by index or prediction")
        local = select_rows(rule, n_rows=len(files), predicted=predicted, labels=truth, column=None)
        if len(local) == 0:
            raise EngineError(f"no image of the data set matches the row filter {rows}")
        sample = np.arange(min(request.global_rows, len(files)))
        explained = np.union1d(local, sample).astype(np.int64)
        targets = predicted_idx if params.target is None else np.full(len(files), params.target)
        torch_form = None
        if gradient:
            if not getattr(prepare, "per_pixel", False):
                raise EngineError(
                    f"{info.name} attributes the model input to the original pixels only when the preprocessing "
                    "keeps the pixel grid; this model's spec resizes or crops (use a perturbation method)"
                )
            from workers.engine.explain.torch_form import load_torch_form

            torch_form = load_torch_form(
                model, check_rows=prepare(images[:8]), onnx_predict=lambda a: model_fwd(np.asarray(a))
            )
        model_fwd.reset()
        per: dict[int, dict[str, Any]] = {}
        for k, r in enumerate(explained):
            if gradient:
                per[int(r)] = explain_image_gradient(
                    info, params, images[r], int(targets[r]), patch=patch, baseline=request.baseline,
                    prepare=prepare, model=model_fwd, torch_form=torch_form, superpixels=superpixels,
                )  # fmt: skip
            else:
                per[int(r)] = explain_image(
                    info, params, images[r], int(targets[r]), patch=patch, baseline=request.baseline,
                    prepare=prepare, model=model_fwd, superpixels=superpixels,
                )  # fmt: skip
            if progress is not None:
                progress(k + 1, len(explained))
        stats = model_fwd.reset()  # the explanations' model rows; the trust scores' come after
        fidelity = [
            removal_infidelity(
                images[r], per[int(r)]["mask"], per[int(r)]["values"], int(targets[r]), baseline=request.baseline,
                prepare=prepare, model=model_fwd, seed=params.seed + int(r),
            )
            for r in explained[:10]
        ]  # fmt: skip
        if gradient and info.name == "saliency":
            fidelity = []  # gradients are slopes, not removal effects: nothing to compare removals with
        describe = backend.describe()
    grid0 = per[int(explained[0])]["grid"]
    names = [f"patch r{i}c{j}" for i in range(grid0[0]) for j in range(grid0[1])] if grid0 else []
    trust = _image_trust(info, [per[int(r)] for r in explained], fidelity, superpixels)

    def row(r: int) -> dict[str, Any]:
        d, img = per[r], images[r]
        heat = heatmap(d["values"], d["mask"])
        thumb, heat_thumb = _thumb(img, heat)
        grid = d["grid"]
        n = int(d["mask"].max()) + 1
        names = (
            [f"patch r{i}c{j}" for i in range(grid[0]) for j in range(grid[1])]
            if grid
            else [f"superpixel {k}" for k in range(n)]
        )
        sizes = np.bincount(d["mask"].reshape(-1))
        means = np.bincount(d["mask"].reshape(-1), weights=img.mean(axis=2).reshape(-1)) / sizes
        return {
            "row": r,
            "name": files[r].name,
            "target": str(labels[targets[r]]) if targets[r] < len(labels) else int(targets[r]),
            "predicted": str(predicted[r]),
            "label": str(truth[r]),
            "output": d["output"],
            "base_value": d["base_value"],
            "features": names,
            "values": [float(v) for v in d["values"]],
            "feature_values": [round(float(v), 3) for v in means],
            "image": {
                "size": list(img.shape[:2]),
                "patch": None if superpixels else patch,
                "superpixels": n if superpixels else None,
                "grid": list(grid) if grid else None,
                "thumb": thumb,
                "heat": heat_thumb,
            },
        }

    # Patches of images of one size are the same features everywhere; superpixels differ from image to image.
    same = [int(r) for r in sample if grid0 and per[int(r)]["grid"] == grid0]
    return {
        "modality": "image",
        "method": info.name,
        "library": info.library,
        "method_title": info.title,
        "kind": info.kind,
        "params": {**params.__dict__, **({"superpixels": superpixels} if superpixels else {"patch_size": patch})},
        "seed": params.seed,
        "features": names,
        "output": output_name,
        "classes": [str(c) for c in labels],
        "baseline": request.baseline,
        "background": {"kind": request.baseline, "rows": 1, "weights": [1.0]},
        "rows": len(explained),
        "explained": [row(int(r)) for r in local],
        "global": {
            "rows": len(same),
            "importance": global_importance(np.array([per[r]["values"] for r in same])).tolist() if same else [],
            "values": [per[r]["values"].tolist() for r in same],
            "feature_values": [],
        },
        "trust": trust,
        "budget": {
            "model_rows": stats.rows
            if not gradient
            else int(sum((per[int(r)].get("steps") or 1) + 2 for r in explained)),
            "model_calls": stats.calls,
            "model_seconds": round(stats.seconds, 4),
            "explain_seconds": round(time.perf_counter() - started, 4),
            **(
                {"model_rows_counted": "torch forward and backward passes, from the steps each image used"}
                if gradient
                else {}
            ),
        },
        **({"torch_form": {"source": torch_form.source, "check": torch_form.check}} if torch_form else {}),
        "backend": describe,
    }
