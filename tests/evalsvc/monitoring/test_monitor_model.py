"""A check runs the monitor's model: metrics once labels arrive (against scikit-learn), prediction and
attribution drift before they do."""

from __future__ import annotations

import io
import json

import numpy as np
import onnxruntime as ort
import pytest
from sklearn import metrics as skm

from evalsvc.monitoring.models import Alert, MonitorCheck, ProductionBatch, ProductionLabels, ProductionRow
from tests.conftest import FIXTURES
from workers.engine.explain.drift import ndcg
from workers.tasks.monitoring import monitor_check

pytestmark = pytest.mark.django_db

LABEL = "diagnosis"


@pytest.fixture
def monitor(api, bc_model, bc_data, reference_table):
    features = [c for c in reference_table.columns if c != LABEL]
    body = {
        "name": "bc-labelled",
        "model_version": str(bc_model.pk),
        "reference_dataset": str(bc_data.pk),
        "columns": features,
        "row_id_column": "request_id",
        "schedule": "0 * * * *",
        "email_to": ["ops@example.com"],
        "detectors": {"attribution_rows": 20, "attribution_nsamples": 128},
    }
    response = api["alice"].post("/api/monitors/", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def _send(api, monitor, table, start, stop, as_csv=False):
    part = table.iloc[start:stop].drop(columns=[LABEL]).copy()
    part.insert(0, "request_id", [f"r{i}" for i in range(start, stop)])
    url = f"/api/monitors/{monitor['id']}/batches/"
    if as_csv:
        data = io.BytesIO(part.to_csv(index=False).encode())
        data.name = "batch.csv"
        response = api["alice"].post(url, {"file": data}, format="multipart")
    else:
        response = api["alice"].post(url, {"rows": part.to_dict(orient="records")}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_row_ids_are_indexed_at_ingestion_and_received_once(api, monitor, reference_table):
    first = _send(api, monitor, reference_table, 0, 60)
    second = _send(api, monitor, reference_table, 60, 100, as_csv=True)
    index = ProductionRow.objects.filter(monitor_id=monitor["id"])
    assert index.count() == 100
    assert index.get(row_id="r0").batch_id == index.get(row_id="r59").batch_id
    assert str(index.get(row_id="r59").batch_id) == first["id"] and index.get(row_id="r59").position == 59
    assert str(index.get(row_id="r72").batch_id) == second["id"] and index.get(row_id="r72").position == 12
    # A batch carrying ids received before is refused whole, naming them: neither the batch nor its ids stay.
    url = f"/api/monitors/{monitor['id']}/batches/"
    part = reference_table.iloc[95:110].drop(columns=[LABEL]).copy()
    part.insert(0, "request_id", [f"r{i}" for i in range(95, 110)])
    response = api["alice"].post(url, {"rows": part.to_dict(orient="records")}, format="json")
    assert response.status_code == 400, response.json()
    detail = response.json()["detail"]
    assert "5 row ids of this batch were received before" in detail and "'r95'" in detail and "'r99'" in detail
    assert ProductionBatch.objects.filter(monitor_id=monitor["id"]).count() == 2 and index.count() == 100
    long = part.iloc[5:6].copy()
    long["request_id"] = "x" * 201
    response = api["alice"].post(url, {"rows": long.to_dict(orient="records")}, format="json")
    assert response.status_code == 400 and "longer than 200 characters" in response.json()["detail"]
    # Labels by row id are found through the index, in every batch, and only there.
    labels_url = f"/api/monitors/{monitor['id']}/labels/"
    body = {"row_ids": ["r3", "r72", "r100"], "labels": [0, 1, 1]}
    response = api["alice"].post(labels_url, body, format="json")
    assert response.status_code == 400 and "1 row ids were never received" in response.json()["detail"]
    assert "'r100'" in response.json()["detail"]
    body = {"row_ids": ["r3", "r72"], "labels": [0, 1]}
    assert api["alice"].post(labels_url, body, format="json").status_code == 201
    # The refused batch's ids were never received: r100 stays unknown.
    _send(api, monitor, reference_table, 100, 110)
    assert index.count() == 110
    assert api["alice"].post(labels_url, {"row_ids": ["r100"], "labels": [1]}, format="json").status_code == 201


def _check(monitor) -> MonitorCheck:
    monitor_check.apply(args=[monitor["id"]]).get()
    return MonitorCheck.objects.filter(monitor_id=monitor["id"]).order_by("-created_at").first()


def test_metrics_arrive_with_labels_and_equal_scikit_learn(api, client, alice, monitor, reference_table):
    first = _send(api, monitor, reference_table, 0, 80)
    _send(api, monitor, reference_table, 80, len(reference_table), as_csv=True)
    labels_url = f"/api/monitors/{monitor['id']}/labels/"

    # Before labels: no metrics; prediction drift and attribution drift stand in, with their samples and times.
    check = _check(monitor)
    assert check.status == "succeeded", check.error
    result = check.result
    assert "performance" not in result
    prediction, attribution = result["prediction"], result["attribution"]
    assert not prediction.get("error") and "error" not in attribution, (prediction, attribution)
    assert prediction["current_rows"] == len(reference_table) and prediction["p_value"] > 0.05
    assert attribution["current_rows"] == attribution["reference_rows"] == 20
    assert attribution["seconds"] > 0 and attribution["threshold"] == 0.9
    names = [f["feature"] for f in attribution["features"]]
    reference = np.array([f["reference"] for f in attribution["features"]])
    current = np.array([f["current"] for f in attribution["features"]])
    assert attribution["ndcg"] == pytest.approx(ndcg(reference, current))
    assert sorted(names) == sorted(c for c in reference_table.columns if c != LABEL)
    assert attribution["drifted"] == (attribution["ndcg"] < 0.9)

    # Labels refused whole, with a message.
    bad = [
        ({"batch": first["id"], "labels": [0, 1]}, "has 80 rows but 2 labels"),
        ({"row_ids": ["r1", "nope"], "labels": [0, 1]}, "1 row ids were never received"),
        ({"row_ids": ["r1", "r1"], "labels": [0, 1]}, "labelled more than once"),
        ({"batch": first["id"], "row_ids": ["r1"], "labels": [0]}, "either 'batch'"),
        ({"batch": "0c9e4b8e-0000-4000-8000-000000000000", "labels": [0]}, "no batch"),
        ({"row_ids": ["r1"], "labels": [{"a": 1}]}, "not a single value"),
        # Hostile ids are quoted cut short, not echoed whole.
        ({"row_ids": ["r1", "x" * 100_000], "labels": [0, 1]}, "never received by this monitor: '" + "x" * 59 + "…"),
        ({"batch": "y" * 100_000, "labels": [0]}, "no batch '" + "y" * 59 + "…"),
    ]
    for body, message in bad:
        response = api["alice"].post(labels_url, body, format="json")
        assert response.status_code == 400 and message in response.json()["detail"], (body, response.json())
        assert len(response.content) < 1000
    assert not ProductionLabels.objects.exists()
    assert api["bob"].post(labels_url, {"row_ids": ["r1"], "labels": [0]}, format="json").status_code == 403
    assert api["carol"].post(labels_url, {"row_ids": ["r1"], "labels": [0]}, format="json").status_code == 404

    # The first batch labelled in its row order; 50 rows of the second by row id; r0 relabelled later.
    truth = reference_table[LABEL].to_numpy()
    response = api["alice"].post(labels_url, {"batch": first["id"], "labels": truth[:80].tolist()}, format="json")
    assert response.status_code == 201, response.json()
    ids = list(range(80, 130))
    response = api["alice"].post(
        labels_url, {"row_ids": [f"r{i}" for i in ids], "labels": truth[ids].tolist()}, format="json"
    )
    assert response.status_code == 201, response.json()
    flipped = int(1 - truth[0])
    assert api["alice"].post(labels_url, {"row_ids": ["r0"], "labels": [flipped]}, format="json").status_code == 201
    assert [r["rows"] for r in api["alice"].get(labels_url).json()["results"]] == [1, 50, 80]

    check = _check(monitor)
    performance = check.result["performance"]
    assert performance["rows_labelled"] == performance["rows_scored"] == 130
    assert performance["label_sources"] == {"in_batches": 0, "by_batch": 80, "by_row_id": 51}
    # The same rows through onnxruntime directly, scored by scikit-learn.
    rows = list(range(130))
    y = truth[rows].copy()
    y[0] = flipped
    x = reference_table.drop(columns=[LABEL]).to_numpy(np.float32)[rows]
    session = ort.InferenceSession(str(FIXTURES / "breast_cancer_logreg.onnx"))
    predicted, proba = session.run(None, {"input": x})
    got = performance["metrics"]
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, predicted))
    assert got["f1"] == pytest.approx(skm.f1_score(y, predicted))
    assert got["precision"] == pytest.approx(skm.precision_score(y, predicted))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1]))
    assert performance["task"] == "classification"
    # The check page shows the metrics and both stand-ins; the monitor's page draws them per check.
    client.force_login(alice)
    page = client.get(f"/monitors/{monitor['id']}/checks/{check.pk}/").content.decode()
    for text in ("The model on the labelled rows", f"{got['accuracy']:.4g}"[:5], "Prediction drift", "nDCG"):
        assert text in page, text
    page = client.get(f"/monitors/{monitor['id']}/").content.decode()
    assert "The model on each window" in page and "attribution nDCG" in page


def test_attribution_drift_threshold_raises_an_alert(api, monitor, reference_table):
    url = f"/api/monitors/{monitor['id']}/"
    detectors = {"attribution_rows": 20, "attribution_nsamples": 128, "attribution_threshold": 1.0,
                 "prediction_drift": False}  # fmt: skip
    response = api["alice"].patch(url, {"detectors": detectors}, format="json")
    assert response.status_code == 200, response.json()
    response = api["alice"].patch(url, {"detectors": {"attribution_threshold": 1.5}}, format="json")
    assert response.status_code == 400 and "attribution_threshold" in json.dumps(response.json())
    _send(api, monitor, reference_table, 0, len(reference_table))
    check = _check(monitor)
    attribution = check.result["attribution"]
    # The reference's own rows: no column drifts; a threshold of 1.0 flags any change of the importance ranking.
    assert check.result["drifted_features"] == [] and "prediction" not in check.result
    assert attribution["ndcg"] < 1.0 and attribution["drifted"]
    assert check.drift and check.result["drift_sources"] == ["attribution"]
    (alert,) = Alert.objects.filter(check_run=check)
    assert alert.payload["check"]["drift_sources"] == ["attribution"]
    assert alert.payload["check"]["attribution_ndcg"] == attribution["ndcg"]
