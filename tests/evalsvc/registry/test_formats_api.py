"""Every model format through the upload API: accepted with its signature, or a 400 that says why."""

from __future__ import annotations

import io
import json

import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile

from evalsvc.registry.models import ModelVersion
from tests.conftest import FIXTURES, stored_blobs

pytestmark = pytest.mark.django_db


def post(client, filename: str, content: bytes, **extra):
    files = {"file": SimpleUploadedFile(filename, content)}
    for key in ("weights", "tokenizer"):
        if key in extra:
            name, data = extra.pop(key)
            files[key] = SimpleUploadedFile(name, data)
    return client.post("/api/model-versions/", {"team": "alpha", "name": "m", **files, **extra}, format="multipart")


@pytest.mark.parametrize(
    ("filename", "fmt"),
    [
        ("digits_cnn.onnx", "onnx"),
        ("digits_cnn.pt", "torchscript"),
        ("digits_cnn.pt2", "torch_export"),
        ("digits_cnn.tflite", "tflite"),
    ],
)
def test_single_file_formats_are_accepted(api, filename, fmt):
    response = post(api["alice"], filename, (FIXTURES / filename).read_bytes())
    assert response.status_code == 201, response.json()
    assert response.json()["format"] == fmt


def test_openvino_ir_takes_both_files(api):
    response = post(
        api["alice"],
        "digits_cnn.xml",
        (FIXTURES / "digits_cnn.xml").read_bytes(),
        weights=("digits_cnn.bin", (FIXTURES / "digits_cnn.bin").read_bytes()),
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["format"] == "openvino"
    assert body["weights_size_bytes"] == (FIXTURES / "digits_cnn.bin").stat().st_size
    assert body["inputs"][0]["shape"][1:] == [1, 8, 8]


def _pickled_checkpoint() -> bytes:
    buf = io.BytesIO()
    torch.save({"weight": torch.zeros(3)}, buf)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("filename", "content", "extra", "fragment"),
    [
        ("model.pt", _pickled_checkpoint(), {}, "pickled PyTorch checkpoint"),
        ("model.pt", b"\x00" * 64, {}, ""),
        ("digits_cnn.xml", (FIXTURES / "digits_cnn.xml").read_bytes(), {}, "needs its weights"),
        (
            "digits_cnn.xml",
            (FIXTURES / "digits_cnn.xml").read_bytes(),
            {"weights": ("w.bin", (FIXTURES / "digits_cnn.bin").read_bytes()[:100])},
            "",
        ),
        ("model.tflite", b"not a flatbuffer at all" * 4, {}, ""),
        (
            "model.onnx",
            (FIXTURES / "digits_cnn.onnx").read_bytes(),
            {"weights": ("w.bin", b"abc")},
            "only used with OpenVINO",
        ),
        (
            "model.onnx",
            (FIXTURES / "digits_cnn.onnx").read_bytes(),
            {"processing": '{"input": {"kind": "magic"}}'},
            "input.kind",
        ),
        (
            "model.onnx",
            (FIXTURES / "digits_cnn.onnx").read_bytes(),
            {"tokenizer": ("tokenizer.json", b"{}")},
            "tokenizer",
        ),
    ],
    ids=[
        "pickle",
        "zeros-pt",
        "ir-no-weights",
        "ir-truncated-weights",
        "tflite-garbage",
        "weights-on-onnx",
        "bad-spec",
        "tokenizer-without-text-spec",
    ],  # fmt: skip
)
def test_bad_uploads_of_every_format_are_400_and_store_nothing(api, filename, content, extra, fragment):
    before = stored_blobs()
    response = post(api["alice"], filename, content, **extra)
    assert response.status_code == 400, response.content
    detail = json.dumps(response.json())
    assert fragment in detail
    assert stored_blobs() == before
    assert ModelVersion.objects.count() == 0
