"""The explain kind on an image data set: refusals at submission, and a job on the digits CNN and a zip of digit images."""

from __future__ import annotations

import numpy as np
import pytest

from evalsvc.evaluations.kinds.base import JobContext
from evalsvc.evaluations.kinds.explain.figures import explain_figures
from evalsvc.evaluations.kinds.explain.section import explain_section
from evalsvc.evaluations.kinds.explain.tables import attribution_rows
from evalsvc.evaluations.services import run_submit
from evalsvc.registry.services import model_version_register
from tests.conftest import FIXTURES
from tests.workers.test_image_models import PROCESSING, digit_images, register  # noqa: F401  (fixture)
from workers.tasks.explain import run_explain

pytestmark = pytest.mark.django_db


def submit(client, model, data, **params):
    r = client.post(
        "/api/runs/",
        {"kind": "explain", "model_version": str(model.pk), "dataset_version": str(data.pk), "params": params},
        format="json",
    )
    return r.status_code, str(r.json())


def test_bad_image_explanations_are_refused(api, alice, alpha, bc_model, bc_data, digit_images):  # noqa: F811
    data, _ = digit_images
    client = api["alice"]
    onnx = register(alice, alpha, "digits_cnn.onnx")
    tflite = register(alice, alpha, "digits_cnn.tflite")
    code, text = submit(client, tflite, data, method="integrated_gradients")
    assert code == 400 and "tflite model has none" in text
    code, text = submit(client, onnx, data, method="deeplift")
    assert code == 400 and "gradient methods on images are integrated_gradients, saliency" in text
    resizing = model_version_register(
        user=alice, team=alpha, name="digits-resized", path=str(FIXTURES / "digits_cnn.pt"),
        filename="digits_cnn.pt",
        processing={**PROCESSING, "input": {**PROCESSING["input"], "resize": [8, 8], "resize_mode": "exact"}},
    )  # fmt: skip
    code, text = submit(client, resizing, data, method="integrated_gradients")
    assert code == 400 and "keeps the pixel grid" in text
    code, text = submit(client, onnx, data, method="occlusion", method_params={"window": 3})
    assert code == 400 and "set patch_size instead" in text
    code, text = submit(client, onnx, data, method="kernel_shap", patch_size=0)
    assert code == 400 and "patch_size" in text
    code, text = submit(client, onnx, data, method="kernel_shap", baseline="kmeans")
    assert code == 400 and "zeros (black) or mean" in text
    code, text = submit(client, onnx, data, method="kernel_shap", rows={"indices": [10**6]})
    assert code == 400 and "images 1000000 do not exist" in text
    code, text = submit(client, onnx, data, method="kernel_shap", cohort_by="label")
    assert code == 400 and "cohort_by apply to tabular data sets" in text
    code, text = submit(client, bc_model, data, method="kernel_shap")
    assert code == 400 and "image processing spec" in text
    code, text = submit(client, onnx, data, method="kernel_shap", patch_size=4, superpixels=8)
    assert code == 400 and "give patch_size or superpixels, not both" in text
    code, text = submit(client, onnx, data, method="kernel_shap", superpixels=1)
    assert code == 400 and "superpixels" in text
    code, text = submit(client, bc_model, bc_data, method="kernel_shap", superpixels=8)
    assert code == 400 and "superpixels applies to image data sets" in text
    code, text = submit(client, onnx, data, method="kernel_shap", patch_size=4, method_params={"nsamples": 64})
    assert code == 201, text
    code, text = submit(client, onnx, data, method="kernel_shap", superpixels=8, method_params={"nsamples": 64})
    assert code == 201, text


def test_image_explain_job_stores_patch_attributions_thumbnails_and_heatmaps(alice, alpha, digit_images):  # noqa: F811
    data, _ = digit_images
    model = register(alice, alpha, "digits_cnn.onnx")
    run = run_submit(
        user=alice, model_version_id=model.pk, dataset_version_id=data.pk, kind="explain",
        params={"method": "kernel_shap", "method_params": {"nsamples": 128, "seed": 1}, "rows": {"indices": [0, 5]},
                "global_rows": 6, "patch_size": 2, "baseline": "zeros"},
    )  # fmt: skip
    run_explain.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    result = run.result
    assert result["modality"] == "image" and len(result["features"]) == 16
    assert [r["row"] for r in result["explained"]] == [0, 5]
    for row in result["explained"]:
        # Additive over the 16 patches of the 8x8 original, to the model's probability of the explained class.
        assert abs(sum(row["values"]) + row["base_value"] - row["output"]) < 1e-4
        assert np.asarray(row["image"]["thumb"]).shape == (8, 8, 3)
        heat = np.asarray(row["image"]["heat"])
        # The heatmap spreads each patch's attribution over its 4 pixels: it sums back to the attributions.
        assert heat.shape == (8, 8) and abs(heat.sum() - sum(row["values"])) < 1e-4
        assert row["name"].endswith(".png") and row["label"] in [str(d) for d in range(10)]
    assert result["trust"]["scores"]["additivity_error"] < 1e-3
    assert result["trust"]["scores"]["infidelity"] >= 0.0  # removals of patches predicted by their attributions
    assert result["budget"]["model_rows"] >= 6 * 128 and result["rows"] == 6
    titles = [t for t, _ in explain_figures(result)]
    assert titles == ["Global importance", "Image 0", "Image 5"]
    overlay = explain_figures(result)[1][1]
    assert [t.type for t in overlay.data] == ["image", "heatmap"] and overlay.data[1].opacity == 0.5
    rows = attribution_rows(result)
    assert len(rows) == 2 * 16 and rows[0]["feature"] == "patch r0c0"
    section = explain_section(JobContext("explain", "Explanation", run.params, result, "digit-images"))
    assert "drawn with its attribution heatmap over it" in " ".join(section.notes)
    assert section.tables[1]["title"].startswith("Explained images")


def test_text_and_image_models_on_tabular_data_are_refused(api, alice, alpha, bc_data, tmp_path):
    from evalsvc.registry.services import model_version_register
    from tests.engine.test_processing_evaluate import _bag_of_words
    from tests.workers.test_image_models import register

    client = api["alice"]
    model_path, tokenizer = _bag_of_words(tmp_path)
    text = model_version_register(
        user=alice, team=alpha, name="bow", path=str(model_path), filename="bow.onnx", tokenizer_path=str(tokenizer),
        processing={
            "input": {"kind": "text", "text_column": "mean radius", "max_length": 4, "add_special_tokens": False,
                      "input_names": {"input_ids": "ids", "attention_mask": "mask"}},
            "output": {"activation": "softmax", "labels": ["neg", "pos"]},
        },
    )  # fmt: skip
    code, message = submit(client, text, bc_data, method="kernel_shap")
    assert code == 400 and "this model reads the text column 'mean radius'" in message
    image = register(alice, alpha, "digits_cnn.onnx")
    code, message = submit(client, image, bc_data, method="kernel_shap")
    assert code == 400 and "need an image data set" in message


def test_superpixel_explain_job_draws_each_image_with_its_superpixels(alice, alpha, digit_images):  # noqa: F811
    data, _ = digit_images
    model = register(alice, alpha, "digits_cnn.onnx")
    run = run_submit(
        user=alice, model_version_id=model.pk, dataset_version_id=data.pk, kind="explain",
        params={"method": "kernel_shap", "method_params": {"nsamples": 64}, "rows": {"indices": [1]},
                "global_rows": 2, "superpixels": 5},
    )  # fmt: skip
    assert run.params["patch_size"] is None and run.params["superpixels"] == 5
    run_explain.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    (row,) = run.result["explained"]
    n = row["image"]["superpixels"]
    assert n >= 2 and row["features"] == [f"superpixel {k}" for k in range(n)]
    assert abs(sum(row["values"]) + row["base_value"] - row["output"]) < 1e-4
    assert {"additivity_error", "infidelity"} <= set(run.result["trust"]["scores"])
    ((title, figure),) = explain_figures(run.result)  # no global bars: superpixels differ from image to image
    assert title == "Image 1" and figure.layout.title.text.endswith(f"{n} superpixels")
    section = explain_section(JobContext("explain", "Explanation", run.params, run.result, "digit-images"))
    assert "SLIC superpixels of each original image (about 5)" in " ".join(section.notes)


def test_integrated_gradients_job_on_images_scores_completeness(alice, alpha, digit_images):  # noqa: F811
    data, _ = digit_images
    model = register(alice, alpha, "digits_cnn.onnx")
    run = run_submit(
        user=alice, model_version_id=model.pk, dataset_version_id=data.pk, kind="explain",
        params={"method": "integrated_gradients", "rows": {"indices": [2]}, "global_rows": 2, "patch_size": 4},
    )  # fmt: skip
    run_explain.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    result = run.result
    assert result["torch_form"]["source"] == "onnx2torch"  # converted, and checked against ONNX Runtime
    assert result["trust"]["scores"]["completeness_error"] < 0.01 and "infidelity" in result["trust"]["scores"]
    (row,) = result["explained"]
    assert len(row["values"]) == 4 and np.asarray(row["image"]["heat"]).shape == (8, 8)
    titles = [t for t, _ in explain_figures(result)]
    assert titles == ["Global importance", "Image 2"]


def test_the_job_form_offers_superpixels_and_patches_for_image_explanations(client, alice, alpha, digit_images):  # noqa: F811
    from evalsvc.evaluations.models import EvaluationRun

    data, _ = digit_images
    model = register(alice, alpha, "digits_cnn.onnx")
    client.force_login(alice)
    page = client.get("/runs/new/").content.decode()
    for name in ("superpixels", "patch_size"):
        assert f'name="{name}"' in page and 'data-kinds="explain"' in page.split(f'name="{name}"')[1].split(">")[0]
    assert 'min="2"' in page.split('name="superpixels"')[1].split(">")[0]
    form = {"kind": "explain", "model_version": str(model.pk), "dataset_version": str(data.pk),
            "method": "kernel_shap", "global_rows": 2, "backend": "onnxruntime", "device": "cpu"}  # fmt: skip
    refused = client.post("/runs/new/", {**form, "superpixels": 1})
    assert refused.status_code == 400 and "greater than or equal to 2" in refused.content.decode()
    both = client.post("/runs/new/", {**form, "superpixels": 5, "patch_size": 4})
    assert both.status_code == 400 and "give patch_size or superpixels, not both" in both.content.decode()
    assert EvaluationRun.objects.count() == 0
    response = client.post("/runs/new/", {**form, "superpixels": 5})
    assert response.status_code == 302
    run = EvaluationRun.objects.get()
    assert run.params["superpixels"] == 5 and run.params["patch_size"] is None
    run_explain.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    (row,) = run.result["explained"]
    assert row["features"] == [f"superpixel {k}" for k in range(row["image"]["superpixels"])]
