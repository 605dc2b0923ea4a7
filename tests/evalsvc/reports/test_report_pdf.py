"""The report as a reviewer receives it: the PDF read back with poppler, its HTML and JSON twins."""

from __future__ import annotations

import hashlib
import io
import subprocess

import pandas as pd
import pytest
from django.core.management import call_command
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from evalsvc.evaluations.models import EvaluationRun
from evalsvc.evaluations.services import run_submit
from evalsvc.registry.models import ModelVersion
from evalsvc.registry.services import dataset_version_register
from evalsvc.reports.models import Report
from evalsvc.reports.render import claimed_report_id
from evalsvc.reports.templatetags.report_format import fmt
from tests.conftest import FIXTURES

from .conftest import execute, pdf_text, pdf_tool, poppler

pytestmark = pytest.mark.django_db

CHINESE_TITLE = "乳腺癌分类模型审计报告"
SECTIONS = [
    "Summary",
    "Model identity",
    "Intended use and known limitations",
    "Data identity",
    "Environment",
    "Jobs",
    "Team thresholds",
    "Sign-off",
]


def client_for(username: str) -> APIClient:
    from django.contrib.auth import get_user_model

    client = APIClient()
    token, _ = Token.objects.get_or_create(user=get_user_model().objects.get(username=username))
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def demo(db):
    """The demo team exactly as `make run` loads it, with its demo jobs run to completion."""
    call_command("seed_demo", stdout=io.StringIO())
    for run in EvaluationRun.objects.filter(team__slug="demo", kind="evaluate"):  # the profile is not needed here
        execute(run)
    model = ModelVersion.objects.get(team__slug="demo", registered_model__name="breast-cancer-logreg")
    runs = list(EvaluationRun.objects.filter(model_version=model, status="succeeded"))
    assert runs, "the demo has a job on the breast-cancer model"
    return {"model": model, "runs": runs, "owner": client_for("demo"), "auditor": client_for("reviewer")}


def test_demo_report_pdf_reads_back_with_hashes_metrics_sections_and_chinese_title(demo, tmp_path):
    owner, model, runs = demo["owner"], demo["model"], demo["runs"]
    policy = {"accuracy": {"min": 0.9}, "roc_auc": {"min": 0.95}, "rmse": {"max": 60}}
    assert owner.put("/api/teams/demo/report-policy/", {"thresholds": policy}, format="json").status_code == 200
    described = owner.patch(
        f"/api/models/{model.registered_model_id}/",
        {"intended_use": "Triage support for 乳腺 biopsies.", "limitations": "Not validated on male patients."},
        format="json",
    )
    assert described.status_code == 200, described.json()

    created = owner.post(
        "/api/reports/",
        {"model_version": str(model.pk), "runs": [str(r.pk) for r in runs], "title": CHINESE_TITLE},
        format="json",
    )
    assert created.status_code == 201, created.json()
    report = created.json()
    download = owner.get(f"/api/reports/{report['id']}/pdf/")
    assert download.status_code == 200
    assert download["Content-Type"] == "application/pdf"
    content = b"".join(download.streaming_content)
    assert content.startswith(b"%PDF-")
    assert hashlib.sha256(content).hexdigest() == report["sha256"] == download["X-Content-SHA256"]
    assert claimed_report_id(content) == report["id"]

    text = pdf_text(content, tmp_path)
    assert CHINESE_TITLE in text
    for title in SECTIONS:
        assert title in text, title
    # Identity: the model's and every data set's SHA-256, in full.
    assert model.sha256 in text
    for run in runs:
        assert run.dataset_version.sha256 in text
    assert report["id"] in text
    # Metrics exactly as stored (4 decimals), and the verdicts against the team's thresholds.
    metrics = runs[0].result["metrics"]
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        assert f"{metrics[key]:.4f}" in text, key
    assert "PASS" in text and "≥ 0.9000" in text and "≥ 0.9500" in text
    assert "rmse" not in text.lower()  # a regression threshold is not listed against a classifier
    assert "Triage support for 乳腺 biopsies." in text and "Not validated on male patients." in text
    assert "skl2onnx" in text and "onnxruntime" in text  # producer; backend in the environment
    assert "Confusion matrix" in text

    # The PDF embeds its id in the document information too.
    info = pdf_tool("pdfinfo", content, tmp_path, "-custom")
    assert report["id"] in info

    # Page 1 renders: a real PNG with ink on it.
    (tmp_path / "render.pdf").write_bytes(content)
    subprocess.run(
        [poppler("pdftoppm"), "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile", str(tmp_path / "render.pdf"),
         str(tmp_path / "page1")],
        check=True,
        timeout=60,
    )  # fmt: skip
    with Image.open(tmp_path / "page1.png") as page:
        assert page.width > 400 and page.height > 600
        grey = page.convert("L")
        dark = sum(1 for value in grey.getdata() if value < 128)
    assert dark > 2000, "page 1 rendered blank"


def test_html_and_json_carry_the_same_content_as_the_pdf(api, bc_model, bc_run, make_report, tmp_path):
    report = make_report(bc_model, [bc_run])
    html = api["alice"].get(f"/api/reports/{report['id']}/html/")
    assert html.status_code == 200 and html["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in html["Content-Security-Policy"]
    page = html.content.decode()
    document = api["alice"].get(f"/api/reports/{report['id']}/json/").json()
    text = pdf_text(b"".join(api["alice"].get(f"/api/reports/{report['id']}/pdf/").streaming_content), tmp_path)

    assert document["schema"] == "evalsvc.report/1"
    assert document["report"]["id"] == report["id"]
    assert document["model"]["sha256"] == bc_model.sha256
    assert [d["sha256"] for d in document["datasets"]] == [bc_run.dataset_version.sha256]
    job = document["jobs"][0]
    assert job["params"] == bc_run.params
    accuracy = bc_run.result["metrics"]["accuracy"]
    assert ["Accuracy", accuracy] in [row[:2] for row in job["tables"][0]["rows"]]  # stored numbers, not recomputed
    interval = bc_run.result["metrics"]["intervals"]["accuracy"]
    assert f"[{interval['low']:.4f}, {interval['high']:.4f}]" in job["tables"][0]["rows"][0]
    for rendered in (page, text):
        assert bc_model.sha256 in rendered
        assert f"{accuracy:.4f}" in rendered
        assert document["report"]["title"] in rendered
    # The figure is the dashboard's confusion matrix, as vector graphics.
    assert job["figures"][0]["title"] == "Confusion matrix"
    assert job["figures"][0]["svg"].startswith("<svg")
    assert job["figures"][0]["svg"] in page
    env = document["environment"][0]
    assert env["backend"] == "onnxruntime" and env["packages"]["onnxruntime"]
    # Where the class order came from, said in words a reader can check (not "taken from the model").
    from evalsvc.evaluations.kinds.evaluate.section import CLASS_ORDER

    said = CLASS_ORDER[bc_run.result["labels_source"]]
    assert any(note.endswith(said) for note in job["notes"]), job["notes"]
    assert "Class order taken from" not in text and said[:40] in " ".join(text.split())


def test_regression_figures_are_vector_and_the_pdf_has_no_raster_images(
    api, diabetes_model, diabetes_run, make_report, tmp_path
):
    report = make_report(diabetes_model, [diabetes_run])
    content = b"".join(api["alice"].get(f"/api/reports/{report['id']}/pdf/").streaming_content)
    images = pdf_tool("pdfimages", content, tmp_path, "-list").strip().splitlines()
    assert len(images) <= 2, images  # the header lines only: every figure is drawn, not pasted
    text = pdf_text(content, tmp_path)
    assert "Predicted vs actual" in text and "Residuals" in text
    metrics = diabetes_run.result["metrics"]
    for key in ("mae", "rmse", "r2"):
        assert f"{metrics[key]:.4f}" in text, key
    document = Report.objects.get(pk=report["id"]).document
    assert [f["title"] for f in document["jobs"][0]["figures"]] == ["Predicted vs actual", "Residuals"]


def test_chinese_feature_names_render_with_a_cjk_font(alice, alpha, bc_model, api, make_report, tmp_path):
    frame = pd.read_csv(FIXTURES / "breast_cancer_test.csv")
    chinese = {"mean_radius": "平均半径", "mean_texture": "平均纹理", "diagnosis": "诊断"}
    frame = frame.rename(columns=chinese)
    path = tmp_path / "bc_zh.csv"
    frame.to_csv(path, index=False)
    data = dataset_version_register(
        user=alice, team=alpha, name="乳腺癌测试集", path=str(path), filename="bc_zh.csv", label_column="诊断"
    )
    run = execute(run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=data.pk, params={}))
    report = make_report(bc_model, [run], title="模型审计报告：乳腺癌")
    content = b"".join(api["alice"].get(f"/api/reports/{report['id']}/pdf/").streaming_content)
    text = pdf_text(content, tmp_path)
    for word in ("平均半径", "平均纹理", "诊断", "乳腺癌测试集", "模型审计报告：乳腺癌"):
        assert word in text, word
    fonts = pdf_tool("pdffonts", content, tmp_path)
    assert "CJK" in fonts, f"no CJK font embedded (install fonts-noto-cjk):\n{fonts}"


def test_a_latency_profile_with_a_concurrency_sweep_is_drawn_in_full(alice, alpha, api, make_report, tmp_path):
    from evalsvc.registry.services import model_version_register
    from workers.tasks.profile import run_profile

    model = model_version_register(
        user=alice, team=alpha, name="cnn", path=str(FIXTURES / "digits_cnn.onnx"), filename="digits_cnn.onnx"
    )
    run = run_submit(
        user=alice,
        model_version_id=model.pk,
        dataset_version_id=None,
        kind="profile",
        params={"backends": ["onnxruntime"], "batch_sizes": [1], "threads": [1], "concurrency": 2,
                "max_seconds_per_cell": 2},
    )  # fmt: skip
    run_profile.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    report = make_report(model, [run])
    figures = Report.objects.get(pk=report["id"]).document["jobs"][0]["figures"]
    titles = [f["title"] for f in figures]
    assert "Concurrency: latency" in titles and "Concurrency: throughput" in titles
    assert all(f["svg"] for f in figures), [f.get("unavailable") for f in figures]  # every one drawn
    text = pdf_text(b"".join(api["alice"].get(f"/api/reports/{report['id']}/pdf/").streaming_content), tmp_path)
    assert "requests in flight" in text and "not drawn in reports" not in text

    # The profile's own section: the stored numbers, every column on the page (none cut off at the margin).
    job = Report.objects.get(pk=report["id"]).document["jobs"][0]
    assert "perf_analyzer's rule" in job["method"]
    (cells,) = [t for t in job["tables"] if t["title"].startswith("Latency per configuration")]
    assert cells["columns"][-1] == "Verdict"
    stored = run.result["cells"][0]
    latency = stored["model"]["latency"]
    row = cells["rows"][0]
    assert row[0] == "onnxruntime/cpu/fp32 b1 t1"
    assert row[1:7] == [latency["count"], latency["p50_ms"], latency["p90_ms"], latency["p99_ms"], latency["max_ms"],
                        round(latency["throughput_rows_s"])]  # fmt: skip
    for value in row:
        assert fmt(value) in text, value
    levels = stored["concurrency"]["levels"]
    (sweep,) = [t for t in job["tables"] if t["title"] == "Concurrency: onnxruntime/cpu/fp32 b1 t1"]
    assert [r[0] for r in sweep["rows"]] == [level["concurrency"] for level in levels] == [1, 2]
    assert fmt(levels[1]["latency"]["p99_ms"]) in text
    assert any(note.startswith("Host: ") for note in job["notes"])
