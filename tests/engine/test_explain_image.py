"""Image explanations: patches of the original image as features, the preprocessing inside the forward function."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.engine.conftest import sha256_of
from workers.engine.errors import EngineError
from workers.engine.explain.forward import Forward
from workers.engine.explain.image import patch_mask
from workers.engine.explain.image_pipeline import explain_image, run_image_explanation
from workers.engine.explain.params import parse_method
from workers.engine.explain.pipeline import ExplainRequest, run_explanation
from workers.engine.processing.spec import parse_processing_spec
from workers.engine.types import DatasetRef, ModelSpec

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
captum_attr = pytest.importorskip("captum.attr")

PROCESSING = {
    "input": {"kind": "image", "color": "gray", "scale": 0.0625, "layout": "nchw", "dtype": "float32"},
    "output": {"activation": "softmax", "labels": [str(d) for d in range(10)]},
}


def _prepare(images: list[np.ndarray]) -> np.ndarray:
    return np.stack([im.mean(axis=2) / 255.0 for im in images])[:, None].astype(np.float32)


_prepare.per_pixel = True  # type: ignore[attr-defined]
_prepare.layout = "nchw"  # type: ignore[attr-defined]


def _one_patch_model(x: np.ndarray) -> np.ndarray:
    """Depends only on the pixels of patch (1, 2) of a 16x16 image cut in 4x4 patches."""
    s = x[:, 0, 4:8, 8:12].sum(axis=(1, 2))
    return np.stack([s, -s], axis=1)


@pytest.mark.parametrize("method", ["kernel_shap", "feature_ablation", "occlusion", "shapley_value_sampling"])
def test_attribution_concentrates_on_the_only_patch_the_model_reads(method):
    rng = np.random.default_rng(0)
    image = rng.integers(50, 255, size=(16, 16, 3), dtype=np.uint8)
    info, params = parse_method(method, {"target": 0})
    out = explain_image(
        info, params, image, 0, patch=4, baseline="zeros", prepare=_prepare, model=Forward(_one_patch_model)
    )
    values = out["values"]
    assert out["grid"] == (4, 4) and len(values) == 16
    expected = float(_one_patch_model(_prepare([image]))[0, 0])
    assert np.argmax(np.abs(values)) == 1 * 4 + 2
    np.testing.assert_allclose(values[6], expected, rtol=1e-4)
    np.testing.assert_allclose(np.delete(values, 6), 0.0, atol=1e-6 * expected)


def _digits_zip(fixtures_dir: Path, tmp_path: Path, n: int = 12) -> tuple[Path, np.ndarray, np.ndarray]:
    sample = np.load(fixtures_dir / "digits_test.npz")
    levels = np.round(sample["input"][:n, 0] * 16).astype(np.uint8)
    archive = tmp_path / "digits.zip"
    names = []
    with zipfile.ZipFile(archive, "w") as zf:
        for index, (pixels, label) in enumerate(zip(levels, sample["label"][:n], strict=True)):
            buf = io.BytesIO()
            Image.fromarray(pixels, mode="L").save(buf, "PNG")
            names.append((str(label), f"digits/{label}/{index:04d}.png", pixels))
            zf.writestr(f"digits/{label}/{index:04d}.png", buf.getvalue())
    names.sort(key=lambda t: (t[0], t[1]))  # ImageFolder order: class, then file
    return archive, np.stack([p for _, _, p in names]), np.array([int(lab) for lab, _, _ in names])


def test_digits_cnn_through_onnxruntime_matches_captum_feature_ablation_on_the_model_input(fixtures_dir, tmp_path):
    archive, pixels, _ = _digits_zip(fixtures_dir, tmp_path)
    model = ModelSpec(
        path=str(fixtures_dir / "digits_cnn.onnx"), format="onnx", sha256=sha256_of(fixtures_dir / "digits_cnn.onnx")
    )
    data = DatasetRef(
        path=str(archive),
        format="imagefolder",
        sha256=sha256_of(archive),
        columns=("image", "label"),
        label_column="label",
    )
    request = ExplainRequest(
        method="feature_ablation", rows={"indices": [0, 3]}, global_rows=4, baseline="zeros", patch_size=2
    )
    result = run_explanation(model, data, request, processing=PROCESSING, class_labels=[str(d) for d in range(10)])
    assert result["modality"] == "image" and len(result["features"]) == 16
    session = ort.InferenceSession(str(fixtures_dir / "digits_cnn.onnx"), providers=["CPUExecutionProvider"])

    def fn(x):
        return torch.from_numpy(session.run(None, {"input": x.detach().numpy().astype(np.float32)})[0])

    mask = torch.tensor(patch_mask(8, 8, 2))[None, None]
    for row in result["explained"]:
        x = torch.tensor(pixels[row["row"]] / 16.0, dtype=torch.float32)[None, None]
        target = int(row["target"])
        ref = captum_attr.FeatureAblation(fn).attribute(x, baselines=0.0, target=target, feature_mask=mask)
        per_patch = np.array([ref[0, 0][mask[0, 0] == g][0].item() for g in range(16)])
        np.testing.assert_allclose(row["values"], per_patch, rtol=1e-4, atol=1e-5)
        assert np.array(row["image"]["thumb"]).shape == (8, 8, 3)
        assert np.array(row["image"]["heat"]).shape == (8, 8)
        assert row["label"] == str(row["label"]) and len(row["feature_values"]) == 16
    assert result["global"]["rows"] == 4 and len(result["global"]["importance"]) == 16
    # 4 images explained (rows 0 and 3 and the global sample 0-3): per image captum's unperturbed pass, one
    # ablation per patch, and the output read once more; all in batches, not row by row.
    assert result["budget"]["model_rows"] == 4 * 18
    assert result["budget"]["model_calls"] <= 4 * 3


def test_kernel_shap_on_digits_is_additive_and_resizing_specs_run_the_preprocessing(fixtures_dir, tmp_path):
    archive, _, _ = _digits_zip(fixtures_dir, tmp_path, n=3)
    model = ModelSpec(
        path=str(fixtures_dir / "digits_cnn.onnx"), format="onnx", sha256=sha256_of(fixtures_dir / "digits_cnn.onnx")
    )
    data = DatasetRef(
        path=str(archive),
        format="imagefolder",
        sha256=sha256_of(archive),
        columns=("image", "label"),
        label_column="label",
    )
    # The original images are 8x8; a spec that resizes from 16x16 sees them upsampled first in the forward.
    spec = parse_processing_spec(
        {**PROCESSING, "input": {**PROCESSING["input"], "resize": [8, 8], "resize_mode": "exact"}}
    ).input
    request = ExplainRequest(
        method="kernel_shap", method_params={"nsamples": 256}, rows={"indices": [1]}, global_rows=0, patch_size=4
    )
    result = run_image_explanation(model, data, request, spec=spec)
    row = result["explained"][0]
    assert len(row["values"]) == 4
    assert abs(sum(row["values"]) + row["base_value"] - row["output"]) < 1e-4 * max(1.0, abs(row["output"]))
    assert result["trust"]["scores"]["additivity_error"] < 1e-3


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_mixing_in_model_space_equals_preprocessing_each_perturbed_image(layout):
    """Without resize or crop the forward mixes the prepared image and baseline; it must equal preparing each image."""
    from workers.engine.explain.image_pipeline import _prepare_fn, patch_forward

    spec = parse_processing_spec(
        {"input": {"kind": "image", "color": "bgr", "mean": [0.4, 0.5, 0.6], "std": [0.2, 0.25, 0.3], "layout": layout}}
    ).input
    fast = _prepare_fn(spec)
    assert fast.per_pixel

    def slow(images):
        return fast(images)

    slow.per_pixel = False
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(10, 7, 3), dtype=np.uint8)
    base = np.full_like(image, 90)
    mask = patch_mask(10, 7, 3)
    z = rng.integers(0, 2, size=(40, int(mask.max()) + 1)).astype(np.float64)
    seen: list[np.ndarray] = []

    def model(x):
        seen.append(x)
        return x.reshape(len(x), -1)[:, :5]

    patch_forward(image, base, mask, fast, Forward(model, dtype=np.float32))(z)
    patch_forward(image, base, mask, slow, Forward(model, dtype=np.float32))(z)
    assert seen[0].shape == seen[1].shape == ((40, 3, 10, 7) if layout == "nchw" else (40, 10, 7, 3))
    np.testing.assert_allclose(seen[0], seen[1], rtol=1e-5, atol=1e-5)


def test_superpixels_of_each_image_match_captum_feature_ablation_with_the_slic_mask(fixtures_dir, tmp_path):
    """SLIC superpixels as the features: captum's FeatureAblation with the same mask on the model input agrees,
    the heatmap paints each superpixel's attribution over the original, and removal infidelity is scored."""
    from workers.engine.explain.image import superpixel_mask
    from workers.engine.processing.image import decode_image

    archive, pixels, _ = _digits_zip(fixtures_dir, tmp_path, n=4)
    model = ModelSpec(
        path=str(fixtures_dir / "digits_cnn.onnx"), format="onnx", sha256=sha256_of(fixtures_dir / "digits_cnn.onnx")
    )
    data = DatasetRef(
        path=str(archive), format="imagefolder", sha256=sha256_of(archive), columns=("image", "label"),
        label_column="label",
    )  # fmt: skip
    request = ExplainRequest(
        method="feature_ablation", rows={"indices": [0, 2]}, global_rows=0, baseline="zeros", superpixels=6
    )
    result = run_explanation(model, data, request, processing=PROCESSING, class_labels=[str(d) for d in range(10)])
    session = ort.InferenceSession(str(fixtures_dir / "digits_cnn.onnx"), providers=["CPUExecutionProvider"])

    def fn(x):
        return torch.from_numpy(session.run(None, {"input": x.detach().numpy().astype(np.float32)})[0])

    with zipfile.ZipFile(archive) as zf:
        files = sorted(n for n in zf.namelist() if n.endswith(".png"))
        originals = {i: decode_image(zf.read(name), name=name) for i, name in enumerate(files)}
    assert result["features"] == [] and result["global"]["importance"] == []  # superpixels differ per image
    counted = 0
    for row in result["explained"]:
        image = originals[row["row"]]
        mask = superpixel_mask(image, 6)
        n = int(mask.max()) + 1
        counted += n + 2  # captum's unperturbed pass, one ablation per superpixel, the output read once more
        assert row["features"] == [f"superpixel {k}" for k in range(n)] and row["image"]["superpixels"] == n
        x = torch.tensor(pixels[row["row"]] / 16.0, dtype=torch.float32)[None, None]
        ref = captum_attr.FeatureAblation(fn).attribute(
            x, baselines=0.0, target=int(row["target"]), feature_mask=torch.tensor(mask)[None, None]
        )
        per_segment = np.array([ref[0, 0][torch.tensor(mask) == k][0].item() for k in range(n)])
        np.testing.assert_allclose(row["values"], per_segment, rtol=1e-4, atol=1e-5)
        # Over the original pixels: every pixel of a superpixel is shaded alike, by the sign of its attribution.
        heat = np.array(row["image"]["heat"])
        assert heat.shape == (8, 8)
        for k in range(n):
            assert np.allclose(heat[mask == k], heat[mask == k][0], atol=1e-6)
            if abs(row["values"][k]) > 1e-4:
                assert np.sign(heat[mask == k][0]) == np.sign(row["values"][k])
    trust = result["trust"]
    assert trust["scores"]["infidelity"] >= 0.0 and "additivity_error" not in trust["scores"]
    assert trust["details"]["infidelity_perturbations"].startswith("32 random removals of a quarter of the superpixels")
    assert result["budget"]["model_rows"] == counted  # the infidelity removals are not counted as explaining


def test_removal_infidelity_is_zero_for_an_additive_model_and_its_exact_attributions():
    """A model that adds its patches' sums: feature ablation is exact, so removals are predicted without error."""
    from workers.engine.explain.image_pipeline import removal_infidelity

    def additive(x: np.ndarray) -> np.ndarray:
        s = x[:, 0].reshape(len(x), 4, 4, 4, 4).sum(axis=(2, 4)) @ np.arange(1, 5)  # (n, 4) patch rows weighted
        return np.stack([s.sum(axis=1), -s.sum(axis=1)], axis=1)

    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, size=(16, 16, 3), dtype=np.uint8)
    info, params = parse_method("feature_ablation", {"target": 0})
    out = explain_image(info, params, image, 0, patch=4, baseline="zeros", prepare=_prepare, model=Forward(additive))
    inf, change = removal_infidelity(
        image, out["mask"], out["values"], 0, baseline="zeros", prepare=_prepare, model=Forward(additive), seed=0
    )
    assert change > 0 and inf < 1e-9 * change
    wrong, _ = removal_infidelity(
        image, out["mask"], out["values"][::-1], 0, baseline="zeros", prepare=_prepare, model=Forward(additive), seed=0
    )
    assert wrong > 1e-3 * change  # attributions on the wrong patches mispredict the removals


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_integrated_gradients_on_images_match_captum_on_the_torchscript_model(fixtures_dir, tmp_path, fmt):
    """IG through the job (ONNX converted by onnx2torch and checked against ONNX Runtime, or TorchScript as is),
    summed per patch of the original image, equals captum's IG on the TorchScript model run directly."""
    archive, pixels, _ = _digits_zip(fixtures_dir, tmp_path, n=4)
    path = fixtures_dir / ("digits_cnn.onnx" if fmt == "onnx" else "digits_cnn.pt")
    model = ModelSpec(path=str(path), format=fmt, sha256=sha256_of(path))
    data = DatasetRef(
        path=str(archive), format="imagefolder", sha256=sha256_of(archive), columns=("image", "label"),
        label_column="label",
    )  # fmt: skip
    request = ExplainRequest(
        method="integrated_gradients", method_params={"n_steps": 64}, rows={"indices": [0, 3]}, global_rows=2,
        baseline="zeros", patch_size=2, backend="onnxruntime" if fmt == "onnx" else "torch",
    )  # fmt: skip
    result = run_explanation(model, data, request, processing=PROCESSING, class_labels=[str(d) for d in range(10)])
    if fmt == "onnx":
        assert result["torch_form"]["source"] == "onnx2torch" and result["torch_form"]["check"]
    module = torch.jit.load(str(fixtures_dir / "digits_cnn.pt")).eval()
    mask = torch.tensor(patch_mask(8, 8, 2))
    for row in result["explained"]:
        x = torch.tensor(pixels[row["row"]] / 16.0, dtype=torch.float32)[None, None]
        ref = captum_attr.IntegratedGradients(module).attribute(
            x, baselines=torch.zeros_like(x), target=int(row["target"]), n_steps=64, method="gausslegendre"
        )
        per_patch = np.array([ref[0, 0][mask == g].sum().item() for g in range(16)])
        np.testing.assert_allclose(row["values"], per_patch, rtol=1e-3, atol=1e-4)
        assert row["base_value"] is None and len(row["features"]) == 16
    trust = result["trust"]["scores"]
    assert trust["completeness_error"] < 0.01  # sum of attributions = f(x) - f(black image), within 1 %
    assert trust["infidelity"] >= 0.0
    assert result["budget"]["model_rows_counted"].startswith("torch forward and backward passes")


def test_saliency_on_images_and_gradient_refusals(fixtures_dir, tmp_path):
    archive, _, _ = _digits_zip(fixtures_dir, tmp_path, n=2)
    model = ModelSpec(
        path=str(fixtures_dir / "digits_cnn.onnx"), format="onnx", sha256=sha256_of(fixtures_dir / "digits_cnn.onnx")
    )
    data = DatasetRef(
        path=str(archive), format="imagefolder", sha256=sha256_of(archive), columns=("image", "label"),
        label_column="label",
    )  # fmt: skip
    request = ExplainRequest(method="saliency", rows={"indices": [1]}, global_rows=0, patch_size=4)
    result = run_explanation(model, data, request, processing=PROCESSING)
    (row,) = result["explained"]
    assert len(row["values"]) == 4 and all(v >= 0 for v in row["values"])  # |gradient| summed per patch
    assert "infidelity" not in result["trust"]["scores"] and "slopes" in result["trust"]["details"]["infidelity_note"]
    resized = {**PROCESSING, "input": {**PROCESSING["input"], "resize": [8, 8], "resize_mode": "exact"}}
    with pytest.raises(EngineError, match="keeps the pixel grid"):
        run_explanation(model, data, request, processing=resized)
    with pytest.raises(EngineError, match="gradient methods on images: integrated_gradients, saliency"):
        run_explanation(model, data, ExplainRequest(method="deeplift", rows={"indices": [1]}), processing=PROCESSING)
