"""Uploads bounded while they arrive, and large ones validated after they are stored.

The limit is checked as the body streams in: an over-limit upload is cut off
with a 413 naming the limit, before the rest of the body is read, and leaves
nothing behind. Files above ``EVALSVC_INLINE_VALIDATION_BYTES`` are stored and
registered as "validating"; the validation a worker runs (called here in
process; tests/e2e/test_large_uploads.py runs it in a real worker) makes them
ready or failed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.client import BOUNDARY, MULTIPART_CONTENT, ClientHandler, encode_multipart
from rest_framework.authtoken.models import Token

from evalsvc.audit.models import AuditEntry
from evalsvc.registry.deferred import artifact_validate
from evalsvc.registry.models import ArtifactStatus, DatasetVersion, ModelVersion
from tests.conftest import FIXTURES, stored_blobs

pytestmark = pytest.mark.django_db

MIB = 1024 * 1024


class CountingInput(io.RawIOBase):
    """A request body that records how much of it the server read."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size is None or size < 0 else min(len(self.data), self.read_bytes + size)
        chunk = self.data[self.read_bytes : end]
        self.read_bytes = end
        return chunk


def _post_through_wsgi(path: str, fields: dict, headers: dict[str, str]) -> tuple[int, bytes, CountingInput]:
    body = encode_multipart(BOUNDARY, fields)
    stream = CountingInput(body)
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": MULTIPART_CONTENT,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": stream,
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        **headers,
    }
    # The test client's handler with this body as its input: the whole middleware stack, the
    # test's database connection kept.
    response = ClientHandler()(environ)
    return response.status_code, response.content, stream


def _spooled_files() -> set[str]:
    return set(os.listdir(settings.FILE_UPLOAD_TEMP_DIR))


def test_an_over_limit_api_upload_is_cut_off_while_it_streams(settings, alice, alpha):
    settings.EVALSVC_MAX_UPLOAD_BYTES = 1 * MIB
    token = Token.objects.create(user=alice).key
    before_blobs, before_spooled = stored_blobs(), _spooled_files()
    # 3 MiB of file: the Content-Length alone passes (the form's allowance), the file does not.
    fields = {
        "team": "alpha",
        "name": "big",
        "file": SimpleUploadedFile("big.csv", b"a,b\n" + b"1,2\n" * (3 * MIB // 4)),
    }
    status, content, stream = _post_through_wsgi(
        "/api/dataset-versions/", fields, {"HTTP_AUTHORIZATION": f"Token {token}"}
    )
    assert status == 413, content
    body = json.loads(content)
    assert body["limit_bytes"] == 1 * MIB
    assert "larger than the 1 MiB limit" in body["detail"] and "nothing was stored" in body["detail"]
    # The handler stopped reading soon after the limit: most of the body was never read.
    assert stream.read_bytes < 1.5 * MIB < len(stream.data)
    assert DatasetVersion.objects.count() == 0
    assert stored_blobs() == before_blobs
    assert _spooled_files() == before_spooled  # the partial temporary file is gone too


def test_a_body_announced_over_the_limit_is_refused_before_reading_any_of_it(settings, alice, alpha):
    settings.EVALSVC_MAX_UPLOAD_BYTES = 1 * MIB
    token = Token.objects.create(user=alice).key
    fields = {"team": "alpha", "name": "big", "file": SimpleUploadedFile("big.onnx", b"\0" * (6 * MIB))}
    status, content, stream = _post_through_wsgi(
        "/api/model-versions/", fields, {"HTTP_AUTHORIZATION": f"Token {token}"}
    )
    assert status == 413, content
    assert stream.read_bytes == 0
    assert ModelVersion.objects.count() == 0


def test_the_browser_form_shows_a_readable_413(settings, client, alice, alpha):
    settings.EVALSVC_MAX_UPLOAD_BYTES = 1 * MIB
    client.force_login(alice)
    before = stored_blobs()
    response = client.post(
        "/datasets/upload/",
        {"team": "alpha", "name": "big", "file": SimpleUploadedFile("big.csv", b"a\n" + b"1\n" * (2 * MIB))},
    )
    assert response.status_code == 413
    html = response.content.decode()
    assert "Upload too large" in html and "larger than the 1 MiB limit" in html
    assert 'href="/datasets/upload/"' in html  # back to the form
    assert DatasetVersion.objects.count() == 0 and stored_blobs() == before


def test_the_hash_is_taken_while_the_file_arrives(api):
    content = (FIXTURES / "breast_cancer.csv").read_bytes()
    response = api["alice"].post(
        "/api/dataset-versions/",
        {"team": "alpha", "name": "bc", "file": SimpleUploadedFile("bc.csv", content)},
        format="multipart",
    )
    assert response.status_code == 201
    assert response.json()["sha256"] == hashlib.sha256(content).hexdigest()
    assert response.json()["status"] == "ready"


# --- large files: stored, then validated ------------------------------------------------


@pytest.fixture
def small_inline_limit(settings):
    settings.EVALSVC_INLINE_VALIDATION_BYTES = 1024
    return settings


def _upload(client, url: str, name: str, path: Path, **extra):
    data = {"team": "alpha", "name": name, "file": SimpleUploadedFile(path.name, path.read_bytes()), **extra}
    return client.post(url, data, format="multipart")


def test_a_large_data_set_is_stored_as_validating_then_made_ready(api, small_inline_limit, tmp_path):
    path = FIXTURES / "breast_cancer.csv"
    response = _upload(api["alice"], "/api/dataset-versions/", "bc", path, label_column="diagnosis")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "validating" and body["rows"] == 0 and body["columns"] == []
    assert f"blobs/sha256/{body['sha256'][:2]}/{body['sha256'][2:4]}/{body['sha256']}" in stored_blobs()

    # Not usable yet: no job, no download.
    model = _upload(api["alice"], "/api/model-versions/", "bc", FIXTURES / "breast_cancer_logreg.onnx")
    assert model.status_code == 202
    submitted = api["alice"].post(
        "/api/runs/", {"model_version": model.json()["id"], "dataset_version": body["id"]}, format="json"
    )
    assert submitted.status_code == 409
    assert "still being validated" in submitted.json()["detail"]
    assert api["alice"].get(f"/api/dataset-versions/{body['id']}/download/").status_code == 409

    assert artifact_validate(kind="dataset_version", version_id=body["id"]) == "ready"
    assert artifact_validate(kind="dataset_version", version_id=body["id"]) == "skipped"  # safe twice
    ready = api["alice"].get(f"/api/dataset-versions/{body['id']}/").json()
    # What the worker found is what validating inside the request finds.
    from evalsvc.registry.inspection import dataset_facts

    inline = dataset_facts(path=str(path), fmt="csv", label_column="diagnosis")
    assert ready["status"] == "ready"
    assert ready["rows"] == inline["rows"] == 569
    assert ready["columns"] == inline["columns"]
    actions = list(AuditEntry.objects.filter(object_id=body["id"]).values_list("action", flat=True))
    assert actions == ["dataset_version.registered", "dataset_version.validated"]

    assert artifact_validate(kind="model_version", version_id=model.json()["id"]) == "ready"
    version = ModelVersion.objects.get(pk=model.json()["id"])
    assert version.class_labels == [0, 1] and version.inputs[0]["shape"] == [None, 30]
    assert api["alice"].get(f"/api/dataset-versions/{body['id']}/download/").status_code == 200


def test_a_large_bad_file_ends_failed_with_its_message_and_its_bytes_removed(
    api, small_inline_limit, tmp_path, django_capture_on_commit_callbacks
):
    bad = tmp_path / "ragged.csv"
    bad.write_text("a,b\n" + "1,2\n" * 500 + "3,4,5\n")
    before = stored_blobs()
    response = _upload(api["alice"], "/api/dataset-versions/", "ragged", bad)
    assert response.status_code == 202
    pk = response.json()["id"]
    with django_capture_on_commit_callbacks(execute=True):  # the bytes go once the failure is committed
        assert artifact_validate(kind="dataset_version", version_id=pk) == "failed"
    failed = api["alice"].get(f"/api/dataset-versions/{pk}/").json()
    assert failed["status"] == "failed"
    assert "line 502 has 3 fields but the header has 2" in failed["status_message"]
    assert stored_blobs() == before  # nothing half-written is kept
    entry = AuditEntry.objects.filter(object_id=pk).order_by("seq").last()
    assert entry.action == "dataset_version.validation_failed" and "502" in entry.details["message"]

    # The failed version shows why, and holds no claim on the bytes: a fixed upload of the same name is accepted.
    again = _upload(api["alice"], "/api/dataset-versions/", "ragged", bad)
    assert again.status_code == 202, again.json()
    assert again.json()["version"] == 2


def test_the_version_page_shows_validating_then_failed(signed_client, small_inline_limit, tmp_path):
    bad = tmp_path / "notes.onnx"
    bad.write_bytes(b"hello, this is text and not a model\n" * 100)
    response = signed_client.post(
        "/models/upload/", {"team": "alpha", "name": "m", "file": SimpleUploadedFile("notes.onnx", bad.read_bytes())}
    )
    assert response.status_code == 302
    page = signed_client.get(response["Location"]).content.decode()
    assert "validating" in page and 'http-equiv="refresh"' in page
    version = ModelVersion.objects.get()
    assert version.status == ArtifactStatus.VALIDATING
    artifact_validate(kind="model_version", version_id=str(version.pk))
    page = signed_client.get(response["Location"]).content.decode()
    assert "failed" in page and "not an ONNX model: the file is text" in page
    assert 'http-equiv="refresh"' not in page


@pytest.fixture
def signed_client(client, alice, alpha):
    client.force_login(alice)
    return client


def test_the_schema_documents_the_413_and_the_202_of_the_upload_endpoints(api):
    import yaml

    schema = yaml.safe_load(api["alice"].get("/api/schema/").content)
    for path in ("/api/model-versions/", "/api/dataset-versions/"):
        responses = schema["paths"][path]["post"]["responses"]
        assert {"201", "202", "413"} <= set(responses), path
    assert "413" not in schema["paths"]["/api/runs/"]["post"]["responses"]  # JSON only: no upload there


def test_a_file_whose_validation_keeps_losing_its_worker_ends_failed(api, small_inline_limit):
    response = _upload(api["alice"], "/api/dataset-versions/", "bc", FIXTURES / "breast_cancer.csv")
    pk = response.json()["id"]
    # Three starts already, each redelivered after its worker was lost (killed, out of memory).
    DatasetVersion.objects.filter(pk=pk).update(validation_attempts=3)
    assert artifact_validate(kind="dataset_version", version_id=pk) == "failed"
    failed = DatasetVersion.objects.get(pk=pk)
    assert failed.status == "failed"
    assert "stopped its worker 3 times" in failed.status_message
    # One start fewer, and it is validated as usual.
    again = _upload(api["alice"], "/api/dataset-versions/", "bc", FIXTURES / "breast_cancer.csv")
    DatasetVersion.objects.filter(pk=again.json()["id"]).update(validation_attempts=2)
    assert artifact_validate(kind="dataset_version", version_id=again.json()["id"]) == "ready"


def test_a_validation_whose_worker_stopped_reporting_is_requeued_then_failed_after_three_starts(
    api, small_inline_limit, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from evalsvc.registry.deferred import validations_of_lost_workers_recover

    response = _upload(api["alice"], "/api/dataset-versions/", "bc", FIXTURES / "breast_cancer.csv")
    pk = response.json()["id"]
    long_ago = timezone.now() - timedelta(minutes=10)
    DatasetVersion.objects.filter(pk=pk).update(
        validation_attempts=1, validation_worker="gone@host", validation_started_at=long_ago, validation_task_id="t1"
    )
    # A live worker's validation, and one started within the window, are left alone.
    assert validations_of_lost_workers_recover(live={"gone@host"}, stale_after_s=90) == []
    assert validations_of_lost_workers_recover(live=set(), stale_after_s=3600) == []
    with django_capture_on_commit_callbacks(execute=True):  # the new message is sent once the requeue commits
        recovered = validations_of_lost_workers_recover(live=set(), stale_after_s=90)
    assert [(r.version_id, r.worker, r.action) for r in recovered] == [(pk, "gone@host", "requeued")]
    requeued = DatasetVersion.objects.get(pk=pk)
    assert requeued.status == "validating" and requeued.validation_worker == ""
    assert requeued.validation_task_id not in ("", "t1")  # sent again under a new task id
    assert "gone@host stopped reporting" in requeued.status_message
    # The old message, should the broker hand it out later, no longer claims the version.
    assert artifact_validate(kind="dataset_version", version_id=pk, task_id="t1", worker="late@host") == "skipped"
    # The third start is lost too: failed, saying so, and never requeued again.
    DatasetVersion.objects.filter(pk=pk).update(
        validation_attempts=3, validation_worker="gone@host", validation_started_at=long_ago
    )
    recovered = validations_of_lost_workers_recover(live=set(), stale_after_s=90)
    assert [(r.version_id, r.action) for r in recovered] == [(pk, "failed")]
    failed = DatasetVersion.objects.get(pk=pk)
    assert failed.status == "failed"
    assert "gone@host" in failed.status_message and "3 times" in failed.status_message
    assert validations_of_lost_workers_recover(live=set(), stale_after_s=90) == []
