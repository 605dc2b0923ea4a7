"""An explanation in an audit report: method, parameters, seed, budget, importance figure, trust table, read back from the PDF."""

from __future__ import annotations

import pytest

from evalsvc.evaluations.services import run_submit
from evalsvc.reports.models import Report
from tests.workers.test_image_models import digit_images, register  # noqa: F401  (fixture)
from workers.tasks.explain import run_explain

from .conftest import pdf_text

pytestmark = pytest.mark.django_db


def test_explanation_section_in_the_pdf(alice, api, bc_model, bc_data, make_report, tmp_path):
    run = run_submit(
        user=alice,
        model_version_id=bc_model.pk,
        dataset_version_id=bc_data.pk,
        kind="explain",
        params={"method": "kernel_shap", "method_params": {"nsamples": 64, "seed": 5}, "rows": {"indices": [1]},
                "global_rows": 8},
    )  # fmt: skip
    run_explain.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    report = make_report(bc_model, [run])
    content = b"".join(api["alice"].get(f"/api/reports/{report['id']}/pdf/").streaming_content)
    text = pdf_text(content, tmp_path)
    assert "KernelSHAP (batched)" in text and "seed 5" in text and "nsamples=64" in text
    for title in ("Global importance", "How far to trust it", "Budget"):
        assert title in text, title
    assert "additivity error" in text and "model rows" in text
    top = max(zip(run.result["global"]["importance"], run.result["features"], strict=True))[1]
    assert top in text
    document = Report.objects.get(pk=report["id"]).document
    job = next(j for j in document["jobs"] if j.get("kind") == "explain" or "figures" in j)
    titles = [f["title"] for f in job["figures"]]
    assert titles[:3] == ["Global importance", "Beeswarm", "Waterfall"]
    # Importance and beeswarm are drawn as vector graphics; the waterfall lives on the dashboard only.
    assert job["figures"][0]["svg"].startswith("<svg") and job["figures"][1]["svg"].startswith("<svg")
    assert "see the dashboard" in job["figures"][2]["unavailable"]


def test_image_explanation_section_in_the_pdf(alice, alpha, api, digit_images, make_report, tmp_path):  # noqa: F811
    data, _ = digit_images
    model = register(alice, alpha, "digits_cnn.onnx")
    run = run_submit(
        user=alice, model_version_id=model.pk, dataset_version_id=data.pk, kind="explain",
        params={"method": "feature_ablation", "rows": {"indices": [2]}, "global_rows": 3, "patch_size": 4},
    )  # fmt: skip
    run_explain.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    report = make_report(model, [run])
    content = b"".join(api["alice"].get(f"/api/reports/{report['id']}/pdf/").streaming_content)
    text = pdf_text(content, tmp_path)
    assert "Feature ablation" in text and "patch_size=4" in text
    assert "Explained images" in text and "drawn on the run page" in text
    row = run.result["explained"][0]
    strongest = max(zip(map(abs, row["values"]), row["features"], strict=True))[1]
    assert strongest in text
    document = Report.objects.get(pk=report["id"]).document
    job = next(j for j in document["jobs"] if "figures" in j)
    assert [f["title"] for f in job["figures"]] == ["Global importance", "Image 2"]
    assert job["figures"][0]["svg"].startswith("<svg")
    assert "see the dashboard" in job["figures"][1]["unavailable"]
