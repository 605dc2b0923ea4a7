"""Parity across formats: one network's ONNX and TorchScript exports, declared the same model, compared."""

from __future__ import annotations

import pytest

from evalsvc.audit.models import AuditEntry
from evalsvc.core.exceptions import ValidationFailed
from evalsvc.evaluations.kinds.parity.section import parity_section
from evalsvc.evaluations.kinds.parity.tables import parity_rows
from evalsvc.evaluations.services import run_submit
from evalsvc.registry.models import ModelVersion
from evalsvc.registry.services import model_version_register
from tests.conftest import FIXTURES
from tests.workers.test_image_models import PROCESSING, digit_images, register  # noqa: F401
from workers.tasks.parity import run_parity

pytestmark = pytest.mark.django_db


def _submit(alice, onnx, data, candidate):
    return run_submit(
        user=alice, model_version_id=onnx.pk, dataset_version_id=data.pk, kind="parity",
        params={"reference": {"backend": "onnxruntime"}, "candidates": [candidate], "batch_size": 50},
    )  # fmt: skip


def test_onnx_and_torchscript_exports_linked_by_api_are_compared(api, alice, alpha, digit_images):  # noqa: F811
    data, _ = digit_images
    onnx = register(alice, alpha, "digits_cnn.onnx")
    torchscript = register(alice, alpha, "digits_cnn.pt")
    candidate = {"backend": "torch", "model_version": str(torchscript.pk)}
    with pytest.raises(ValidationFailed, match="not declared the same model"):
        _submit(alice, onnx, data, candidate)

    url = f"/api/model-versions/{torchscript.pk}/"
    assert api["bob"].patch(url, {"same_model_as": str(onnx.pk)}, format="json").status_code == 403
    itself = api["alice"].patch(url, {"same_model_as": str(torchscript.pk)}, format="json")
    assert itself.status_code == 400 and "cannot link to itself" in itself.json()["detail"]
    linked = api["alice"].patch(url, {"same_model_as": str(onnx.pk)}, format="json")
    assert linked.status_code == 200 and linked.json()["same_model_as"] == str(onnx.pk)
    entry = AuditEntry.objects.filter(action="model_version.same_model_updated").latest("seq")
    assert entry.details == {"new": str(onnx.pk), "previous": None}
    back = api["alice"].patch(f"/api/model-versions/{onnx.pk}/", {"same_model_as": str(torchscript.pk)}, format="json")
    assert back.status_code == 400 and "leads back" in back.json()["detail"]

    run = _submit(alice, onnx, data, candidate)
    run_parity.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    (result,) = run.result["candidates"]
    assert result["status"] == "ok", result["error"]
    assert result["target"]["model_version"] == str(torchscript.pk)
    assert result["target"]["format"] == "torchscript"
    assert run.result["reference"]["format"] == "onnx"
    (logits,) = result["outputs"]
    assert logits["max_abs"] < 1e-4
    assert logits["label_agreement"] == 1.0
    (row,) = parity_rows(run.result)
    assert row["model"] == f"{torchscript} (torchscript)"


def test_versions_linking_to_the_same_version_are_the_same_model(alice, alpha, digit_images):  # noqa: F811
    data, _ = digit_images
    onnx = register(alice, alpha, "digits_cnn.onnx")
    # Registered linked: the TorchScript export and the OpenVINO IR both name the ONNX file.
    torchscript = register(alice, alpha, "digits_cnn.pt", same_model_as=onnx)
    ir = register(alice, alpha, "digits_cnn.xml", weights_path=str(FIXTURES / "digits_cnn.bin"), same_model_as=onnx)
    run = run_submit(
        user=alice, model_version_id=torchscript.pk, dataset_version_id=data.pk, kind="parity",
        params={"reference": {"backend": "torch"},
                "candidates": [{"backend": "openvino", "model_version": str(ir.pk)}], "batch_size": 50},
    )  # fmt: skip
    run_parity.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    (result,) = run.result["candidates"]
    assert result["status"] == "ok" and result["outputs"][0]["max_abs"] < 1e-4
    assert result["outputs"][0]["label_agreement"] == 1.0
    section = parity_section_for(run)
    assert section.tables[0]["rows"][0][0].endswith(f" on {ir} (openvino)")


def parity_section_for(run):
    from evalsvc.evaluations.kinds.base import JobContext

    return parity_section(
        JobContext(
            kind="parity", label="parity", params=run.params, result=run.result, dataset=str(run.dataset_version)
        )
    )


def test_an_unlinked_or_foreign_version_is_refused(api, alice, alpha, carol, users, digit_images):  # noqa: F811
    data, _ = digit_images
    onnx = register(alice, alpha, "digits_cnn.onnx")
    unlinked = register(alice, alpha, "digits_cnn.pt")
    foreign = model_version_register(
        user=carol, team=users["gamma"], name="theirs", path=str(FIXTURES / "digits_cnn.pt"),
        filename="digits_cnn.pt", processing=PROCESSING,
    )  # fmt: skip
    url = "/api/runs/"
    for version, message in ((unlinked, "is not declared the same model"), (foreign, "not found")):
        response = api["alice"].post(
            url,
            {"model_version": str(onnx.pk), "dataset_version": str(data.pk), "kind": "parity",
             "params": {"candidates": [{"backend": "torch", "model_version": str(version.pk)}]}},
            format="json",
        )  # fmt: skip
        assert response.status_code == 400, response.content
        assert message in response.json()["detail"]
    # Linking to another team's version is refused as not found, at registration and later.
    patched = api["alice"].patch(
        f"/api/model-versions/{unlinked.pk}/", {"same_model_as": str(foreign.pk)}, format="json"
    )
    assert patched.status_code == 404
    with (FIXTURES / "digits_cnn.pt2").open("rb") as handle:
        upload = api["alice"].post(
            "/api/model-versions/",
            {"team": "alpha", "name": "cnn", "file": handle, "same_model_as": str(foreign.pk)},
            format="multipart",
        )
    assert upload.status_code == 404
    assert not ModelVersion.objects.filter(original_filename="digits_cnn.pt2").exists()
