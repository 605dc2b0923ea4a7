"""The explain kind on a text model: refused submissions (4xx with a message), and a job from submission to figures."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from evalsvc.evaluations.kinds.base import JobContext
from evalsvc.evaluations.kinds.explain.figures import explain_figures
from evalsvc.evaluations.kinds.explain.section import explain_section
from evalsvc.evaluations.kinds.explain.tables import attribution_rows
from evalsvc.evaluations.services import run_submit
from workers.tasks.explain import run_explain

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def build_text_model(tmp_path: Path, **options) -> dict:
    spec = importlib.util.spec_from_file_location("build_text_model", ROOT / "scripts" / "build_text_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build(tmp_path, **options)


def register_text(user, team, built: dict, *, labels: list[str] | None = None):
    """The sentiment model (with its tokenizer and text spec) and its reviews, registered."""
    from evalsvc.registry.services import dataset_version_register, model_version_register

    processing = built["processing"]
    if labels is not None:
        processing = {**processing, "output": {**processing["output"], "labels": labels}}
    model = model_version_register(
        user=user, team=team, name="sentiment", path=str(built["onnx"]), filename="sentiment.onnx",
        tokenizer_path=str(built["tokenizer"]), processing=processing,
    )  # fmt: skip
    data = dataset_version_register(
        user=user, team=team, name="reviews", path=str(built["csv"]), filename="reviews.csv", label_column="sentiment"
    )
    return model, data


def submit(client, model, data, **params):
    r = client.post(
        "/api/runs/",
        {"kind": "explain", "model_version": str(model.pk), "dataset_version": str(data.pk), "params": params},
        format="json",
    )
    return r.status_code, str(r.json())


def test_bad_text_explanations_are_refused_with_what_is_wrong(api, alice, alpha, bc_data, tmp_path):
    model, data = register_text(alice, alpha, build_text_model(tmp_path))
    client = api["alice"]
    code, message = submit(client, model, data, method="lime")
    assert code == 400 and "lime is not available for text models" in message
    code, message = submit(client, model, data, method="kernel_shap", cohort_by="label")
    assert code == 400 and "cohort_by apply to tabular or image explanations" in message
    code, message = submit(client, model, data, method="kernel_shap", rows={"filter": "column_value", "column": "review", "value": "x"})  # fmt: skip
    assert code == 400 and "not by a column's value" in message
    code, message = submit(client, model, data, method="kernel_shap", rows={"indices": [400]})
    assert code == 400 and "rows 400 do not exist" in message
    code, message = submit(client, model, bc_data, method="kernel_shap")
    assert code == 400 and "reads the text column 'review'" in message
    code, message = submit(client, model, data, method="kernel_shap", method_params={"nsamples": 64})
    assert code == 201, message


def test_text_explanation_job_stores_tokens_for_the_page_and_the_report(alice, alpha, tmp_path):
    model, data = register_text(alice, alpha, build_text_model(tmp_path))
    run = run_submit(
        user=alice, model_version_id=model.pk, dataset_version_id=data.pk, kind="explain",
        params={"method": "kernel_shap", "method_params": {"nsamples": 128, "seed": 2},
                "rows": {"filter": "misclassified", "limit": 3}, "global_rows": 12},
    )  # fmt: skip
    run_explain.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    result = run.result
    assert result["modality"] == "text" and result["params"]["nsamples"] == 128
    assert 1 <= len(result["explained"]) <= 3
    assert all(r["predicted"] != r["label"] for r in result["explained"])
    for row in result["explained"]:
        assert row["features"] == row["text"].split() and len(row["values"]) == len(row["features"])
        assert abs(sum(row["values"]) + row["base_value"] - row["output"]) < 1e-9
    assert result["estimated_model_rows"] >= result["budget"]["model_rows"] > 0
    titles = [t for t, _ in explain_figures(result)]
    assert titles == ["Global importance"] + [f"Text {r['row']}" for r in result["explained"]]
    highlight = dict(explain_figures(result))[f"Text {result['explained'][0]['row']}"]
    tokens = [t for line in highlight.data[0].text for t in line if t]
    assert tokens == result["explained"][0]["features"]
    rows = attribution_rows(result)
    assert len(rows) == sum(len(r["features"]) for r in result["explained"])
    section = explain_section(JobContext("explain", "Explanation", run.params, result, "reviews"))
    assert section.tables[1]["title"].startswith("Explained texts")
    assert "k-means" not in section.method and "pad baseline" in section.method
