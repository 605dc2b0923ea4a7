"""Embedding drift in the drift job, on the digits CNN and image-folder data sets: the penultimate layer read
as an extra ONNX output (checked against onnx's own extractor), a planted shift found, none where there is none."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import onnx
import onnx.utils
import onnxruntime as ort
import pytest
from PIL import Image

from evalsvc.core.exceptions import ValidationFailed
from evalsvc.evaluations.kinds import get_kind
from evalsvc.evaluations.kinds.base import JobContext
from evalsvc.evaluations.services import run_submit
from evalsvc.registry.services import dataset_version_register, model_version_register
from tests.conftest import FIXTURES
from workers.engine.drift.embeddings import model_embeddings, penultimate_tensor
from workers.tasks.artifacts import dataset_ref, model_spec
from workers.tasks.drift import run_drift

pytestmark = pytest.mark.django_db

PROCESSING = {
    "input": {"kind": "image", "color": "gray", "scale": 0.0625, "layout": "nchw", "dtype": "float32"},
    "output": {"activation": "softmax", "labels": [str(d) for d in range(10)]},
}


def _images(alice, alpha, tmp_path, name: str, levels: np.ndarray, labels: np.ndarray):
    archive = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for index, (pixels, label) in enumerate(zip(levels, labels, strict=True)):
            buf = io.BytesIO()
            Image.fromarray(pixels, mode="L").save(buf, "PNG")
            zf.writestr(f"digits/{label}/{index:04d}.png", buf.getvalue())
    return dataset_version_register(user=alice, team=alpha, name=name, path=str(archive), filename=f"{name}.zip")


@pytest.fixture
def digits(alice, alpha, tmp_path):
    sample = np.load(FIXTURES / "digits_test.npz")
    levels = np.round(sample["input"][:, 0] * 16).astype(np.uint8)
    labels = sample["label"]
    # The planted shift: every image brighter by a quarter of the range (saturating), as a changed camera would.
    brighter = np.minimum(levels.astype(np.int64) + 4, 16).astype(np.uint8)
    model = model_version_register(
        user=alice, team=alpha, name="digits-cnn", path=str(FIXTURES / "digits_cnn.onnx"), filename="digits_cnn.onnx",
        processing=PROCESSING,
    )  # fmt: skip
    return {
        "model": model,
        "reference": _images(alice, alpha, tmp_path, "ref", levels[::2], labels[::2]),
        "same": _images(alice, alpha, tmp_path, "same", levels[1::2], labels[1::2]),
        "shifted": _images(alice, alpha, tmp_path, "shifted", brighter[1::2], labels[1::2]),
    }


def _run(alice, digits, current: str, embedding: dict) -> dict:
    run = run_submit(
        user=alice, model_version_id=digits["model"].pk, dataset_version_id=digits[current].pk, kind="drift",
        params={"reference_dataset": str(digits["reference"].pk), "embedding": embedding},
    )  # fmt: skip
    run_drift.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return run.result


def test_penultimate_embeddings_equal_the_extracted_subgraph(digits, tmp_path):
    graph = onnx.load(str(FIXTURES / "digits_cnn.onnx")).graph
    tensor = penultimate_tensor(graph)
    assert tensor == "/Flatten_output_0"  # the input of the final Gemm
    embeddings, info = model_embeddings(
        model_spec(digits["model"]), dataset_ref(digits["reference"]), max_rows=1000, processing=PROCESSING
    )
    assert info == {"source": "penultimate", "tensor": tensor, "rows": 180, "dimensions": embeddings.shape[1]}
    # onnx's own extractor cuts the graph at that tensor; the same images through it give the same numbers.
    cut = tmp_path / "cut.onnx"
    onnx.utils.extract_model(str(FIXTURES / "digits_cnn.onnx"), str(cut), ["input"], [tensor])
    images = np.load(FIXTURES / "digits_test.npz")["input"][::2]
    expected = ort.InferenceSession(str(cut), providers=["CPUExecutionProvider"]).run(None, {"input": images})[0]
    # The archive lists images by class folder: compare the two sets of rows in one order.
    expected = expected.reshape(len(images), -1)
    assert embeddings.shape == expected.shape

    def ordered(rows: np.ndarray) -> np.ndarray:
        return rows[np.lexsort(np.round(rows, 3).T[::-1])]

    np.testing.assert_allclose(ordered(embeddings), ordered(expected), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("source", ["penultimate", "input"])
def test_planted_shift_is_found_on_embeddings_and_none_without_it(alice, digits, source):
    embedding = {"source": source, "dim": 16, "rows": 180}
    shifted = _run(alice, digits, "shifted", embedding)
    same = _run(alice, digits, "same", embedding)
    for result in (shifted, same):
        (found,) = result["multivariate"]
        assert found["detector"] == "embedding_mmd" and found["n_reference_sample"] == 180
        assert found["params"]["source"] == source and found["params"]["dim"] == 16
        assert result["embedding"]["reference_rows"] == result["embedding"]["current_rows"] == 180
        assert found["p_value"] >= 1 / 101  # (k + 1) / (n + 1), never 0
    assert shifted["drift"] and shifted["multivariate"][0]["p_value"] < 0.05
    assert not same["drift"] and same["multivariate"][0]["p_value"] > 0.05
    # The run page's and report's section say what was compared.
    section = get_kind("drift").section(
        JobContext(kind="drift", label="Drift", params={"alpha": 0.05}, result=shifted, dataset="shifted")
    )
    assert "Verdict: drift in the model's embeddings." in section.notes
    assert ("penultimate layer" if source == "penultimate" else "prepared input") in section.method


def test_embedding_parameters_are_checked_at_submission(alice, digits, bc_data, bc_model):
    def submit(model, data, params):
        return run_submit(user=alice, model_version_id=model.pk, dataset_version_id=data.pk, kind="drift",
                          params=params)  # fmt: skip

    images = {"reference_dataset": str(digits["reference"].pk)}
    with pytest.raises(ValidationFailed, match="give 'embedding'"):
        submit(digits["model"], digits["same"], images)
    with pytest.raises(ValidationFailed, match="invalid params") as raised:
        submit(digits["model"], digits["same"], {**images, "embedding": {"source": "pixels", "dim": 1}})
    errors = str(raised.value.extra)
    assert "source" in errors and "dim" in errors
    with pytest.raises(ValidationFailed, match="not with a table"):
        submit(digits["model"], bc_data, {**images, "embedding": {}})
    with pytest.raises(ValidationFailed, match="no columns to compare"):
        submit(digits["model"], digits["same"], {**images, "embedding": {}, "columns": ["x"]})
    with pytest.raises(ValidationFailed, match="declares no image input"):
        submit(bc_model, digits["same"], {**images, "embedding": {}})
