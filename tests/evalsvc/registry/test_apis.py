from __future__ import annotations

import hashlib
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from evalsvc.registry.models import DatasetVersion, ModelVersion
from tests.conftest import FIXTURES, stored_blobs

pytestmark = pytest.mark.django_db

MODEL = FIXTURES / "breast_cancer_logreg.onnx"


def upload(client, url, name, content, filename, **extra):
    data = {"team": "alpha", "name": name, "file": SimpleUploadedFile(filename, content), **extra}
    return client.post(url, data, format="multipart")


def test_model_upload_extracts_signature_and_hash(api):
    content = MODEL.read_bytes()
    response = upload(api["alice"], "/api/model-versions/", "bc", content, "bc.onnx")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["sha256"] == hashlib.sha256(content).hexdigest()
    assert body["version"] == 1
    assert body["format"] == "onnx"
    assert body["producer_name"] == "skl2onnx"
    assert body["inputs"] == [{"name": "input", "dtype": "float32", "shape": [None, 30]}]
    assert {o["name"] for o in body["outputs"]} >= {"label", "probabilities"}
    assert body["opset"]["ai.onnx"] >= 13
    assert body["class_labels"] == [0, 1]
    # stored content-addressed under the storage root
    sha = body["sha256"]
    assert f"blobs/sha256/{sha[:2]}/{sha[2:4]}/{sha}" in stored_blobs()


def test_model_versions_increment_and_identical_bytes_are_detected(api):
    first = upload(api["alice"], "/api/model-versions/", "bc", MODEL.read_bytes(), "bc.onnx")
    assert first.status_code == 201
    again = upload(api["alice"], "/api/model-versions/", "bc", MODEL.read_bytes(), "copy.onnx")
    assert again.status_code == 409
    assert "already registered as bc v1" in again.json()["detail"]
    assert again.json()["existing_id"] == first.json()["id"]
    other = upload(
        api["alice"], "/api/model-versions/", "bc", (FIXTURES / "diabetes_ridge.onnx").read_bytes(), "d.onnx"
    )
    assert other.status_code == 201
    assert other.json()["version"] == 2
    assert ModelVersion.objects.count() == 2


def _truncated() -> bytes:
    data = MODEL.read_bytes()
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("content", "filename", "fragment"),
    [
        (b"", "empty.onnx", "empty"),
        (b"a,b,c\n1,2,3\n", "table.onnx", "not an ONNX model"),
        (b"\x89PNG\r\n\x1a\n" + bytes(200), "picture.onnx", "not an ONNX model"),
        (_truncated(), "half.onnx", ""),
        ((FIXTURES / "breast_cancer.csv").read_bytes(), "data.csv", "cannot tell the model format"),
    ],
    ids=["empty", "csv-bytes", "png-bytes", "truncated", "csv-extension"],
)
def test_bad_model_uploads_get_400_and_store_nothing(api, content, filename, fragment):
    before = stored_blobs()
    response = upload(api["alice"], "/api/model-versions/", "bad", content, filename)
    assert response.status_code == 400, response.content
    assert fragment in response.json()["detail"]
    assert response.json()["detail"]  # a message, whatever the case
    assert stored_blobs() == before
    assert ModelVersion.objects.count() == 0


def test_upload_without_file_or_to_unknown_team(api):
    response = api["alice"].post("/api/model-versions/", {"team": "alpha", "name": "x"}, format="multipart")
    assert response.status_code == 400
    assert "file" in response.json()
    response = api["alice"].post(
        "/api/model-versions/",
        {"team": "no-such-team", "name": "x", "file": SimpleUploadedFile("m.onnx", MODEL.read_bytes())},
        format="multipart",
    )
    assert response.status_code == 404
    assert "does not exist or you are not a member" in response.json()["detail"]


def test_viewer_cannot_register(api):
    response = upload(api["bob"], "/api/model-versions/", "bc", MODEL.read_bytes(), "bc.onnx")
    assert response.status_code == 403
    assert "viewer" in response.json()["detail"]


def test_csv_dataset_schema(api):
    content = (FIXTURES / "breast_cancer.csv").read_bytes()
    response = upload(api["alice"], "/api/dataset-versions/", "bc", content, "bc.csv", label_column="diagnosis")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["rows"] == 569
    assert body["label_column"] == "diagnosis"
    assert len(body["columns"]) == 31
    label = next(c for c in body["columns"] if c["name"] == "diagnosis")
    assert label == {"name": "diagnosis", "dtype": "int64", "missing": 0}
    assert body["sha256"] == hashlib.sha256(content).hexdigest()


def test_parquet_dataset_schema(api):
    content = (FIXTURES / "diabetes.parquet").read_bytes()
    response = upload(api["alice"], "/api/dataset-versions/", "d", content, "d.parquet", label_column="progression")
    assert response.status_code == 201, response.json()
    assert response.json()["rows"] == 442
    assert {c["dtype"] for c in response.json()["columns"]} == {"float64"}


def test_csv_missing_values_are_counted(api):
    content = b"a,b,label\n1,2.5,0\n,3.5,1\n4,,1\n"
    response = upload(api["alice"], "/api/dataset-versions/", "m", content, "m.csv", label_column="label")
    assert response.status_code == 201, response.json()
    columns = {c["name"]: c for c in response.json()["columns"]}
    assert columns["a"]["missing"] == 1 and columns["a"]["dtype"] == "int64"
    assert columns["b"]["missing"] == 1 and columns["b"]["dtype"] == "float64"


@pytest.mark.parametrize(
    ("content", "extra", "fragment"),
    [
        (b"a,b,label\n1,2,0\n3,4\n5,6,1\n", {"label_column": "label"}, "line 3"),
        ("a,b,label\n1,caf\u00e9,0\n".encode("latin-1"), {}, "UTF-8"),
        (b"", {}, "empty"),
        (b"a,b,label\n1,2,0\n", {"label_column": "target"}, "label column 'target'"),
        (b"a,b,label\n", {}, "no data rows"),
    ],
    ids=["ragged", "latin1", "empty", "missing-label", "header-only"],
)
def test_bad_csv_gets_400_and_stores_nothing(api, content, extra, fragment):
    before = stored_blobs()
    response = upload(api["alice"], "/api/dataset-versions/", "bad", content, "bad.csv", **extra)
    assert response.status_code == 400, response.content
    assert fragment in response.json()["detail"]
    assert stored_blobs() == before
    assert DatasetVersion.objects.count() == 0


def test_not_parquet(api):
    response = upload(api["alice"], "/api/dataset-versions/", "bad", b"PAR1 but not really", "x.parquet")
    assert response.status_code == 400
    assert "Parquet" in response.json()["detail"]


def test_download_returns_the_same_bytes(api):
    content = MODEL.read_bytes()
    created = upload(api["alice"], "/api/model-versions/", "bc", content, "bc.onnx").json()
    response = api["alice"].get(f"/api/model-versions/{created['id']}/download/")
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert body == content
    assert response["X-Content-SHA256"] == created["sha256"]
    assert 'filename="bc.onnx"' in response["Content-Disposition"]


def test_filename_cannot_escape_storage_root(api):
    response = upload(api["alice"], "/api/model-versions/", "bc", MODEL.read_bytes(), "../../../../etc/evil.onnx")
    assert response.status_code == 201
    assert response.json()["original_filename"] == "evil.onnx"
    assert all(key.startswith("blobs/sha256/") for key in stored_blobs())


def test_large_csv_counts_every_row(api):
    # 20k rows is enough to cross Django's in-memory upload threshold many times over.
    buf = io.StringIO()
    buf.write("x1,x2,label\n")
    for i in range(20000):
        buf.write(f"{i},{i * 0.5},{i % 2}\n")
    response = upload(
        api["alice"], "/api/dataset-versions/", "big", buf.getvalue().encode(), "big.csv", label_column="label"
    )
    assert response.status_code == 201
    assert response.json()["rows"] == 20000


def test_a_model_with_class_labels_and_a_spec_label_map_is_refused(api):
    import json

    from evalsvc.registry.models import ModelVersion

    processing = json.dumps({"output": {"labels": ["benign", "malignant"]}})
    response = upload(api["alice"], "/api/model-versions/", "bc", MODEL.read_bytes(), "bc.onnx", processing=processing)
    assert response.status_code == 400, response.json()
    detail = str(response.json())
    assert "names its classes itself" in detail and "output.labels" in detail
    assert not ModelVersion.objects.exists()
