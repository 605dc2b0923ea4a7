"""Image models through the service: every format of the digits CNN, an image-folder data set,
the declared processing spec, and the same answers on every engine."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from evalsvc.evaluations.services import run_submit
from evalsvc.registry.services import dataset_version_register, model_version_register
from tests.conftest import FIXTURES
from workers.tasks.evaluate import run_evaluate
from workers.tasks.parity import run_parity

pytestmark = pytest.mark.django_db

# 8x8 grey images whose pixel values are the digits data's 0..16 levels: scale 1/16 gives the
# model exactly the [0, 1] inputs it was trained on.
PROCESSING = {
    "input": {"kind": "image", "color": "gray", "scale": 0.0625, "layout": "nchw", "dtype": "float32"},
    "output": {"activation": "softmax", "labels": [str(d) for d in range(10)]},
}


@pytest.fixture
def digit_images(alice, alpha, tmp_path):
    sample = np.load(FIXTURES / "digits_test.npz")
    levels = np.round(sample["input"][:, 0] * 16).astype(np.uint8)
    archive = tmp_path / "digits.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for index, (pixels, label) in enumerate(zip(levels, sample["label"], strict=True)):
            buf = io.BytesIO()
            Image.fromarray(pixels, mode="L").save(buf, "PNG")
            zf.writestr(f"digits/{label}/{index:04d}.png", buf.getvalue())
    data = dataset_version_register(
        user=alice, team=alpha, name="digit-images", path=str(archive), filename="digits.zip"
    )
    return data, sample


def reference_accuracy(sample) -> float:
    session = ort.InferenceSession(str(FIXTURES / "digits_cnn.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": sample["input"]})[0]
    return float((logits.argmax(1) == sample["label"]).mean())


def register(alice, alpha, filename: str, **kwargs):
    return model_version_register(
        user=alice, team=alpha, name="digits-cnn", path=str(FIXTURES / filename), filename=filename,
        processing=PROCESSING, **kwargs,
    )  # fmt: skip


def test_image_folder_dataset_is_registered_with_its_classes(digit_images):
    data, sample = digit_images
    assert data.format == "imagefolder"
    assert data.rows == len(sample["label"])
    assert data.label_column == "label"
    counts = data.extra["classes"]
    assert sum(counts.values()) == data.rows
    assert counts["3"] == int((sample["label"] == 3).sum())


@pytest.mark.parametrize(
    ("filename", "backend", "extra"),
    [
        ("digits_cnn.onnx", "onnxruntime", {}),
        ("digits_cnn.onnx", "openvino", {}),
        ("digits_cnn.xml", "openvino", {"weights_path": str(FIXTURES / "digits_cnn.bin")}),
        ("digits_cnn.pt", "torch", {}),
        ("digits_cnn.pt2", "torch", {}),
        ("digits_cnn.tflite", "tflite", {}),
    ],
)
def test_every_format_evaluates_to_the_reference_accuracy(alice, alpha, digit_images, filename, backend, extra):
    data, sample = digit_images
    model = register(alice, alpha, filename, **extra)
    run = run_submit(
        user=alice, model_version_id=model.pk, dataset_version_id=data.pk, params={"backend": backend, "batch_size": 50}
    )
    assert run.params["task"] == "classification"  # inferred from the declared softmax head
    run_evaluate.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.result["metrics"]["accuracy"] == pytest.approx(reference_accuracy(sample), abs=1e-12)
    assert run.environment["backend"] == backend


def test_openvino_ir_upload_needs_its_weights(alice, alpha):
    from evalsvc.core.exceptions import ValidationFailed

    with pytest.raises(ValidationFailed, match="needs its weights"):
        model_version_register(
            user=alice, team=alpha, name="ir", path=str(FIXTURES / "digits_cnn.xml"), filename="digits_cnn.xml"
        )


def test_parity_across_every_cpu_engine(alice, alpha, digit_images):
    data, _ = digit_images
    model = register(alice, alpha, "digits_cnn.onnx")
    run = run_submit(user=alice, model_version_id=model.pk, dataset_version_id=data.pk, kind="parity", params={})
    run_parity.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    results = {c["target"]["backend"] + "/" + c["target"]["device"]: c for c in run.result["candidates"]}
    assert "openvino/cpu" in results
    for label, candidate in results.items():
        assert candidate["status"] == "ok", (label, candidate["error"])
        assert candidate["outputs"][0]["max_abs"] < 1e-4, label
        assert candidate["outputs"][0]["label_agreement"] == 1.0, label
