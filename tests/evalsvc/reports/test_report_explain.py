"""An explanation in an audit report: method, parameters, seed, budget, importance figure, trust table, read back from the PDF."""

from __future__ import annotations

import base64
import io
import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from evalsvc.evaluations.services import run_submit
from evalsvc.reports.models import Report
from tests.workers.test_image_models import digit_images, register  # noqa: F401  (fixture)
from workers.tasks.explain import run_explain

from .conftest import pdf_text, pdf_tool

SVG = "{http://www.w3.org/2000/svg}"

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
    # Every figure of the run page is drawn in the report, the waterfall too: its bars follow the row's values.
    assert all(f["svg"].startswith("<svg") for f in job["figures"]), [f.get("unavailable") for f in job["figures"]]
    assert "not drawn in reports" not in text
    waterfall = ET.fromstring(job["figures"][2]["svg"])
    bars = [r for r in waterfall.iter(f"{SVG}rect") if r.get("fill") in ("#3D9970", "#FF4136", "#4499FF")]
    row = run.result["explained"][0]
    shown = min(len(row["values"]), 15)
    assert len(bars) == shown + 1 + (row.get("base_value") is not None)  # E[f(x)], one per feature, f(x)
    ups = sum(1 for v in sorted(row["values"], key=abs, reverse=True)[:shown] if v >= 0)
    assert sum(1 for r in bars if r.get("fill") == "#3D9970") == ups
    labels = ["".join(t.itertext()) for t in waterfall.iter(f"{SVG}text")]
    strongest = run.result["features"][max(range(len(row["values"])), key=lambda i: abs(row["values"][i]))]
    assert "f(x)" in labels and strongest in labels


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
    assert "Explained images" in text and "attribution heatmap over it" in text
    row = run.result["explained"][0]
    strongest = max(zip(map(abs, row["values"]), row["features"], strict=True))[1]
    assert strongest in text
    document = Report.objects.get(pk=report["id"]).document
    job = next(j for j in document["jobs"] if "figures" in j)
    assert [f["title"] for f in job["figures"]] == ["Global importance", "Image 2"]
    assert job["figures"][0]["svg"].startswith("<svg")
    # The image with its heatmap over it: two pictures in the PDF, the thumbnail and the translucent heatmap.
    overlay = ET.fromstring(job["figures"][1]["svg"])
    pictures = list(overlay.iter(f"{SVG}image"))
    assert len(pictures) == 2 and all(p.get("href", "").startswith("data:image/png;base64,") for p in pictures)
    thumb = Image.open(io.BytesIO(base64.b64decode(pictures[0].get("href").split(",", 1)[1])))
    assert thumb.size == (len(row["image"]["thumb"][0]), len(row["image"]["thumb"]))
    heat = Image.open(io.BytesIO(base64.b64decode(pictures[1].get("href").split(",", 1)[1])))
    assert heat.mode == "RGBA" and heat.getpixel((0, 0))[3] == round(255 * 0.5)
    images = pdf_tool("pdfimages", content, tmp_path, "-list").strip().splitlines()[2:]
    assert len(images) >= 2, images  # drawn in the PDF, not only stored
    assert "not drawn in reports" not in text


def test_text_explanation_section_in_the_pdf(alice, alpha, api, make_report, tmp_path):
    from tests.workers.test_explain_text_task import build_text_model, register_text

    model, data = register_text(alice, alpha, build_text_model(tmp_path / "model"))
    run = run_submit(
        user=alice, model_version_id=model.pk, dataset_version_id=data.pk, kind="explain",
        params={"method": "kernel_shap", "method_params": {"nsamples": 64}, "rows": {"indices": [3]}, "global_rows": 5},
    )  # fmt: skip
    run_explain.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    report = make_report(model, [run])
    content = b"".join(api["alice"].get(f"/api/reports/{report['id']}/pdf/").streaming_content)
    text = pdf_text(content, tmp_path)
    assert "Explained texts" in text and "three strongest tokens" in text
    row = run.result["explained"][0]
    strongest = max(zip(map(abs, row["values"]), row["features"], strict=True))[1]
    assert strongest in text
