"""The explain kind: refused submissions (4xx with a message), and a job run in-process from submission to stored result."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from evalsvc.evaluations.kinds.base import JobContext
from evalsvc.evaluations.kinds.explain.figures import explain_figures
from evalsvc.evaluations.kinds.explain.section import explain_section
from evalsvc.evaluations.kinds.explain.tables import attribution_rows
from evalsvc.evaluations.services import run_submit
from evalsvc.registry.services import model_version_register
from workers.tasks.explain import run_explain

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def submit(client, model, data, **params):
    return client.post(
        "/api/runs/",
        {"kind": "explain", "model_version": str(model.pk), "dataset_version": str(data.pk), "params": params},
        format="json",
    )


def _text(response) -> str:
    return str(response.json())


def test_bad_explanations_are_refused_with_what_is_wrong(api, bc_model, bc_data):
    alice = api["alice"]
    r = submit(alice, bc_model, bc_data, method="shapely")
    assert r.status_code == 400 and "unknown explanation method 'shapely'" in _text(r)
    r = submit(alice, bc_model, bc_data, method="kernel_shap", method_params={"nsamples": 2, "x": 1})
    assert r.status_code == 400 and "nsamples must be at least 4" in _text(r) and "unknown parameter 'x'" in _text(r)
    # The logistic regression's ONNX-ML operators have no PyTorch converter: named.
    r = submit(alice, bc_model, bc_data, method="integrated_gradients")
    assert r.status_code == 400 and "ai.onnx.ml:LinearClassifier" in _text(r)
    r = submit(alice, bc_model, bc_data, method="kernel_shap", rows={"indices": [3, 9999]})
    assert r.status_code == 400 and "rows 9999 do not exist" in _text(r)
    r = submit(alice, bc_model, bc_data, method="kernel_shap", method_params={"nsamples": 100000}, max_model_rows=10**6)
    assert r.status_code == 400 and "more than max_model_rows" in _text(r)
    r = submit(alice, bc_model, bc_data, method="exact_shapley")
    assert r.status_code == 400 and "2**30 coalitions" in _text(r)
    r = submit(
        alice, bc_model, bc_data, method="kernel_shap", rows={"filter": "column_value", "column": "nope", "value": 1}
    )
    assert r.status_code == 400 and "'nope' is not one" in _text(r)
    r = submit(alice, bc_model, bc_data, method="kernel_shap", reference_dataset="not-an-id")
    assert r.status_code == 400 and "reference data set not-an-id does not exist" in _text(r)
    r = submit(alice, bc_model, bc_data, method="kernel_shap", method_params={"nsamples": 64})
    assert r.status_code == 201, r.json()
    assert r.json()["params"]["estimated_model_rows"] > 0


def test_explain_job_runs_and_matches_the_engine(alice, bc_model, bc_data):
    run = run_submit(
        user=alice,
        model_version_id=bc_model.pk,
        dataset_version_id=bc_data.pk,
        kind="explain",
        params={
            "method": "kernel_shap",
            "method_params": {"nsamples": 256, "seed": 3},
            "rows": {"indices": [0, 4]},
            "global_rows": 20,
            "cohort_by": "label",
            "reference_dataset": str(bc_data.pk),
        },
    )
    run_explain.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    result = run.result
    assert [r["row"] for r in result["explained"]] == [0, 4]
    assert len(result["features"]) == 30 and len(result["global"]["importance"]) == 30
    # Additive: attributions + base value = the model's output for the explained class, per row.
    for row in result["explained"]:
        assert abs(sum(row["values"]) + row["base_value"] - row["output"]) < 1e-6
    assert result["trust"]["scores"]["additivity_error"] < 1e-4
    assert {"infidelity", "sensitivity_max", "stability"} <= set(result["trust"]["scores"])
    budget = result["budget"]
    assert budget["model_rows"] > 0 and budget["estimated_model_rows"] >= budget["model_rows"]
    # The reference is the same data: only KernelSHAP's sampling differs, so the ranking barely moves.
    assert result["attribution_drift"]["ndcg"] > 0.97 and not result["attribution_drift"]["drifted"]
    assert set(result["cohorts"]["groups"]) == {"0", "1"}
    # The figures, the CSV rows and the report section come from the stored result.
    titles = [t for t, _ in explain_figures(result)]
    assert titles == ["Global importance", "Beeswarm", "Waterfall", "Cohorts"]
    assert len(attribution_rows(result)) == 2 * 30
    section = explain_section(JobContext("explain", "Explanation", run.params, result, "bc-test"))
    assert "seed 3" in section.method and section.tables[0]["title"] == "Global importance"


def test_gradient_job_on_an_onnx_model_converted_to_pytorch(alice, alpha, bc_data, tmp_path):
    spec = importlib.util.spec_from_file_location("build_explain_models", ROOT / "scripts" / "build_explain_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    paths = module.build(tmp_path)
    model = model_version_register(
        user=alice, team=alpha, name="bc-mlp", path=str(paths["onnx"]), filename="bc_mlp.onnx"
    )
    run = run_submit(
        user=alice,
        model_version_id=model.pk,
        dataset_version_id=bc_data.pk,
        kind="explain",
        params={"method": "integrated_gradients", "rows": {"filter": "predicted_class", "value": 1, "limit": 3}},
    )
    run_explain.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.result["trust"]["scores"]["completeness_error"] < 0.01
    assert all(r["predicted"] == "1" for r in run.result["explained"])


def test_time_budget_chooses_the_sample_count_and_reports_its_error(alice, bc_model, bc_data):
    run = run_submit(
        user=alice,
        model_version_id=bc_model.pk,
        dataset_version_id=bc_data.pk,
        kind="explain",
        params={"method": "kernel_shap", "rows": {"indices": [0]}, "global_rows": 4, "time_budget_s": 4},
    )
    run_explain.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    budget = run.result["budget"]
    assert budget["time_budget_s"] == 4 and budget["chosen_nsamples"] >= 32
    assert run.result["params"]["nsamples"] == budget["chosen_nsamples"]
    # The attributions stay near the budget (the machine may be busy: a generous bound).
    assert budget["explain_seconds"] < 4 * 3
    error = budget["sampling_error"]
    assert error["seeds"] == 3 and error["std"] >= 0 and 0 <= error["relative"] < 1
    # A budget no sample count fits ends the run with what to do instead.
    tight = run_submit(
        user=alice,
        model_version_id=bc_model.pk,
        dataset_version_id=bc_data.pk,
        kind="explain",
        params={"method": "kernel_shap", "rows": {"indices": [0]}, "global_rows": 5000, "background_k": 50,
                "time_budget_s": 0.1},
    )  # fmt: skip
    run_explain.apply(args=[str(tight.pk)])
    tight.refresh_from_db()
    assert tight.status == "failed" and "time budget of 0.08 s cannot be met" in tight.error


def test_the_job_form_offers_cohorts_time_budget_and_a_reference_for_explanations(
    client, alice, alpha, bc_model, bc_data
):
    from evalsvc.evaluations.models import EvaluationRun

    client.force_login(alice)
    page = client.get("/runs/new/").content.decode()
    for name in ("cohort_by", "time_budget_s", "background_k", "reference_dataset"):
        assert f'name="{name}"' in page, name
        assert "explain" in page.split(f'name="{name}"')[1].split(">")[0], name
    form = {"kind": "explain", "model_version": str(bc_model.pk), "dataset_version": str(bc_data.pk),
            "method": "kernel_shap", "global_rows": 8, "backend": "onnxruntime", "device": "cpu"}  # fmt: skip
    refused = client.post("/runs/new/", {**form, "time_budget_s": 0})
    assert refused.status_code == 400 and EvaluationRun.objects.count() == 0
    response = client.post(
        "/runs/new/",
        {**form, "cohort_by": "label", "time_budget_s": 5, "background_k": 4, "reference_dataset": str(bc_data.pk)},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    run = EvaluationRun.objects.get()
    assert run.params["cohort_by"] == "label" and run.params["time_budget_s"] == 5.0
    assert run.params["background_k"] == 4 and run.params["reference_dataset"] == str(bc_data.pk)
