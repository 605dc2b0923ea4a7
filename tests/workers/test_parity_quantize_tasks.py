"""Parity and quantization jobs end to end in-process: submit, run the task, read the stored result."""

from __future__ import annotations

import numpy as np
import pytest

from evalsvc.evaluations.services import run_submit
from evalsvc.registry.models import ModelVersion
from evalsvc.registry.services import dataset_version_register, model_version_register
from tests.support.models import digits_table
from workers.tasks.parity import run_parity
from workers.tasks.quantize import run_quantize

pytestmark = pytest.mark.django_db


@pytest.fixture
def digits_versions(alice, alpha, tmp_path, digits_mlp):
    """The digits MLP and its data registered on alpha: (model version, data set version, sklearn's predictions, truth)."""
    table = digits_table()
    csv = tmp_path / "digits.csv"
    table.to_csv(csv, index=False)
    model = model_version_register(
        user=alice,
        team=alpha,
        name="digits-mlp",
        path=str(digits_mlp.path),
        filename="mlp.onnx",
        processing={"output": {"activation": "softmax"}},
    )
    data = dataset_version_register(
        user=alice, team=alpha, name="digits", path=str(csv), filename="digits.csv", label_column="digit"
    )
    return model, data, digits_mlp.predicted, table["digit"].to_numpy()


def execute(task, run):
    task.apply(args=[str(run.pk)])
    run.refresh_from_db()
    return run


def test_parity_between_onnxruntime_and_openvino(alice, digits_versions):
    model, data, _, _ = digits_versions
    run = run_submit(
        user=alice,
        model_version_id=model.pk,
        dataset_version_id=data.pk,
        kind="parity",
        params={"candidates": [{"backend": "openvino", "device": "cpu"}], "batch_size": 100},
    )
    run = execute(run_parity, run)
    assert run.status == "succeeded", run.error
    (candidate,) = run.result["candidates"]
    assert candidate["status"] == "ok", candidate
    (logits,) = candidate["outputs"]
    assert logits["name"] == "logits"
    assert logits["max_abs"] < 1e-4
    assert logits["label_agreement"] == 1.0
    assert candidate["backend"]["backend"] == "openvino"
    assert run.result["rows"] == data.rows


def test_parity_default_candidates_are_every_offer(alice, digits_versions):
    model, data, _, _ = digits_versions
    run = run_submit(user=alice, model_version_id=model.pk, dataset_version_id=data.pk, kind="parity", params={})
    backends = {c["backend"] for c in run.params["candidates"]}
    assert "openvino" in backends
    assert ("onnxruntime", "cpu", "fp32") not in {
        (c["backend"], c["device"], c["precision"]) for c in run.params["candidates"]
    }


def test_quantize_registers_linked_variants_and_compares_them(alice, digits_versions):
    model, data, predicted, truth = digits_versions
    run = run_submit(
        user=alice, model_version_id=model.pk, dataset_version_id=data.pk, kind="quantize", params={"max_rows": 2000}
    )
    run = execute(run_quantize, run)
    assert run.status == "succeeded", run.error
    result = run.result
    parent_accuracy = float(np.mean(predicted == truth))
    assert result["parent"]["metrics"]["accuracy"] == pytest.approx(parent_accuracy, abs=1e-12)
    variants = {v["variant"]: v for v in result["variants"]}
    assert set(variants) == {"fp16", "int8_dynamic", "int8_static"}
    for name, entry in variants.items():
        assert entry["status"] == "ok", entry
        version = ModelVersion.objects.get(pk=entry["model_version_id"])
        assert version.parent_id == model.pk and version.variant == name
        assert version.processing == model.processing  # declared processing travels with the variant
        assert entry["size_bytes"] < model.size_bytes
        assert entry["agreement"][0]["label_agreement"] > 0.95
        assert abs(entry["metrics"]["accuracy"] - parent_accuracy) < 0.05
    assert ModelVersion.objects.filter(parent=model).count() == 3

    # a second job makes identical bytes: the same versions, not duplicates
    again = execute(
        run_quantize,
        run_submit(user=alice, model_version_id=model.pk, dataset_version_id=data.pk, kind="quantize", params={}),
    )
    assert again.status == "succeeded", again.error
    assert ModelVersion.objects.filter(parent=model).count() == 3


def test_quantize_refuses_non_onnx_and_records_unquantizable_variants(alice, bc_model, bc_data):
    run = execute(
        run_quantize,
        run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=bc_data.pk, kind="quantize", params={}),
    )
    # the scikit-learn model is ONNX-ML: every variant records why, and a job that made nothing fails
    assert run.status == "failed"
    assert run.error.startswith("no variant could be made, so nothing was compared")
    assert {v["status"] for v in run.result["variants"]} == {"failed"}
    assert all("ai.onnx.ml" in v["error"] for v in run.result["variants"])
    assert all(v["variant"] in run.error for v in run.result["variants"])


def test_parity_and_quantize_pages_show_the_stored_results(client, alice, digits_versions):
    model, data, _, _ = digits_versions
    parity = execute(
        run_parity,
        run_submit(
            user=alice,
            model_version_id=model.pk,
            dataset_version_id=data.pk,
            kind="parity",
            params={"candidates": [{"backend": "openvino", "device": "cpu"}]},
        ),
    )
    client.force_login(alice)
    html = client.get(f"/runs/{parity.pk}/").content.decode()
    assert "openvino/cpu/fp32" in html and "Label agreement" in html
    assert 'id="figure-0"' in html
    quant = execute(
        run_quantize,
        run_submit(
            user=alice,
            model_version_id=model.pk,
            dataset_version_id=data.pk,
            kind="quantize",
            params={"variants": ["int8_dynamic"], "max_rows": 500},
        ),
    )
    html = client.get(f"/runs/{quant.pk}/").content.decode()
    variant = ModelVersion.objects.get(parent=model)
    assert f"/models/{variant.pk}/" in html and "int8_dynamic" in html

    # The audit report lays out the same stored numbers, one section per job.
    from evalsvc.reports.services import report_generate

    report = report_generate(user=alice, model_version_id=model.pk, run_ids=[str(parity.pk), str(quant.pk)])
    jobs = {job["kind"]: job for job in report.document["jobs"]}
    (diffs, *worst) = jobs["parity"]["tables"]
    (logits,) = parity.result["candidates"][0]["outputs"]
    assert diffs["title"] == "Differences from onnxruntime/cpu/fp32"
    assert diffs["rows"][0][1:5] == ["logits", logits["max_abs"], logits["mean_abs"], logits["max_rel"]]
    assert diffs["rows"][0][5] == f"{100 * logits['label_agreement']:.2f} %"
    assert worst and worst[0]["title"] == "Rows that differ most on openvino/cpu/fp32"
    assert "element by element" in jobs["parity"]["method"]
    (variants, *_) = jobs["quantize"]["tables"]
    assert variants["columns"][4] == "Accuracy"
    parent_row, int8_row = variants["rows"]
    assert parent_row[:2] == ["parent", "this version"]
    stored = quant.result["variants"][0]
    assert int8_row[:5] == ["int8_dynamic", f"v{variant.version}", stored["size_bytes"], stored["size_ratio"],
                            stored["metrics"]["accuracy"]]  # fmt: skip


def test_engine_that_cannot_run_onnx_ml_says_which_operators(alice, bc_model, bc_data):
    run = execute(
        run_parity,
        run_submit(
            user=alice,
            model_version_id=bc_model.pk,
            dataset_version_id=bc_data.pk,
            kind="parity",
            params={"candidates": [{"backend": "openvino", "device": "cpu"}]},
        ),
    )
    # its only candidate could not run: nothing was compared, so the job fails and says why
    assert run.status == "failed"
    assert run.error.startswith("no candidate could run, so nothing was compared (openvino/cpu/fp32: ")
    (candidate,) = run.result["candidates"]
    assert candidate["status"] == "failed"
    assert "unsupported operators ai.onnx.ml:LinearClassifier, ai.onnx.ml:Scaler" in candidate["error"]
    assert "unsupported operators ai.onnx.ml:LinearClassifier" in run.error
