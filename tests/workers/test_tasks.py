"""The evaluate task run in-process: status transitions, retries, idempotency."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from django.core.files.storage import default_storage
from sklearn import metrics as skm

from evalsvc.core.exceptions import ValidationFailed
from evalsvc.evaluations.models import EvaluationRun
from evalsvc.evaluations.services import run_cancel, run_submit
from evalsvc.registry.services import dataset_version_register
from tests.conftest import FIXTURES
from workers.tasks.evaluate import run_evaluate

pytestmark = pytest.mark.django_db


def execute(run: EvaluationRun) -> EvaluationRun:
    run_evaluate.apply(args=[str(run.pk)])
    run.refresh_from_db()
    return run


def reference_classification() -> dict:
    frame = pd.read_csv(FIXTURES / "breast_cancer_test.csv")
    y = frame.pop("diagnosis").to_numpy()
    session = ort.InferenceSession(str(FIXTURES / "breast_cancer_logreg.onnx"), providers=["CPUExecutionProvider"])
    label, proba = session.run(["label", "probabilities"], {"input": frame.to_numpy(np.float32)})
    return {
        "accuracy": skm.accuracy_score(y, label),
        "precision": skm.precision_score(y, label),
        "recall": skm.recall_score(y, label),
        "f1": skm.f1_score(y, label),
        "roc_auc": skm.roc_auc_score(y, proba[:, 1]),
        "confusion_matrix": skm.confusion_matrix(y, label).tolist(),
        "rows": len(y),
    }


def test_evaluate_succeeds_with_metrics_matching_sklearn(alice, bc_model, bc_data):
    run = run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=bc_data.pk, params={"batch_size": 50})
    run = execute(run)
    assert run.status == "succeeded", run.error
    assert run.progress == 1.0
    assert run.attempts == 1
    expected = reference_classification()
    metrics = run.result["metrics"]
    for name in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        assert metrics[name] == pytest.approx(expected[name], abs=1e-9), name
    assert run.result["confusion_matrix"] == expected["confusion_matrix"]
    assert run.result["rows"] == expected["rows"]
    assert run.environment["backend"] == "onnxruntime"
    assert run.environment["provider"] == "CPUExecutionProvider"
    assert run.environment["packages"]["onnxruntime"] == ort.__version__
    assert run.started_at <= run.finished_at


def test_regression_metrics_match_sklearn(alice, diabetes_model, diabetes_data):
    run = execute(run_submit(user=alice, model_version_id=diabetes_model.pk, dataset_version_id=diabetes_data.pk))
    assert run.status == "succeeded", run.error
    frame = pd.read_parquet(FIXTURES / "diabetes.parquet")
    y = frame.pop("progression").to_numpy()
    session = ort.InferenceSession(str(FIXTURES / "diabetes_ridge.onnx"), providers=["CPUExecutionProvider"])
    pred = session.run(None, {"input": frame.to_numpy(np.float32)})[0].ravel()
    metrics = run.result["metrics"]
    assert metrics["mae"] == pytest.approx(skm.mean_absolute_error(y, pred), rel=1e-9)
    assert metrics["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)), rel=1e-9)
    assert metrics["r2"] == pytest.approx(skm.r2_score(y, pred), rel=1e-9)


def test_running_twice_is_safe(alice, bc_model, bc_data):
    run = execute(run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=bc_data.pk))
    first_result, first_finished = run.result, run.finished_at
    run = execute(run)
    assert run.status == "succeeded"
    assert run.attempts == 1  # the second delivery found it finished and did nothing
    assert run.result == first_result and run.finished_at == first_finished


def test_cancelled_before_start_never_runs(alice, bc_model, bc_data):
    run = run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=bc_data.pk)
    run_cancel(user=alice, run_id=run.pk)
    run = execute(run)
    assert run.status == "cancelled"
    assert run.attempts == 0 and run.result is None


def test_permanent_engine_error_fails_with_user_message(alice, alpha, bc_model, tmp_path):
    # A value the model cannot take shows only when the rows are read: the worker fails the run and says where.
    frame = pd.read_csv(FIXTURES / "breast_cancer_test.csv")
    frame["mean_texture"] = frame["mean_texture"].astype(object)
    frame.loc[4, "mean_texture"] = "n/a"
    path = tmp_path / "text-in-numbers.csv"
    frame.to_csv(path, index=False)
    data = dataset_version_register(
        user=alice, team=alpha, name="text", path=str(path), filename=path.name, label_column="diagnosis"
    )
    run = execute(run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=data.pk, params={}))
    assert run.status == "failed"
    assert "'mean_texture'" in run.error and "'n/a'" in run.error
    assert run.attempts == 1  # permanent: not retried


def test_a_data_set_the_model_cannot_take_is_refused_at_submission(alice, bc_model, diabetes_data):
    # The breast-cancer model takes 30 features; the diabetes data has 10: known from the stored schemas.
    with pytest.raises(ValidationFailed) as refused:
        run_submit(
            user=alice,
            model_version_id=bc_model.pk,
            dataset_version_id=diabetes_data.pk,
            params={"task": "classification"},
        )
    assert "30" in refused.value.message and "10" in refused.value.message
    assert not EvaluationRun.objects.filter(dataset_version=diabetes_data).exists()


def test_transient_storage_error_is_retried_then_fails(alice, bc_model, bc_data):
    run = run_submit(user=alice, model_version_id=bc_model.pk, dataset_version_id=bc_data.pk)
    default_storage.delete(bc_data.storage_key)  # the artifact store "goes away"
    run = execute(run)
    assert run.status == "failed"
    assert "could not read a stored artifact" in run.error
    assert run.attempts == 1 + run_evaluate.max_retries
