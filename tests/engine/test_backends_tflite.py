"""The TFLite (LiteRT) backend on the digits CNN written by scripts/build_models.py, and its failure paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workers.engine.errors import BackendUnavailable, EngineError, InvalidArtifact
from workers.engine.inference.tflite import TfLiteBackend
from workers.engine.types import ModelSpec, TensorSpec

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture(scope="module")
def digits_tflite() -> ModelSpec:
    return ModelSpec(str(FIXTURES / "digits_cnn.tflite"), "tflite", "")


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.load(FIXTURES / "digits_test.npz")["input"][:16]


def test_probe() -> None:
    info = TfLiteBackend.probe()
    assert info["devices"] == ["cpu"] and info["precisions"] == ["fp32"] and info["formats"] == ["tflite"]
    assert info["version"]


@pytest.mark.parametrize("xnnpack", [True, False])
def test_predict_resizes_for_each_batch(digits_tflite: ModelSpec, images: np.ndarray, xnnpack: bool) -> None:
    with TfLiteBackend(digits_tflite, options={"threads": 1, "xnnpack": xnnpack}) as b:
        assert b.input_specs == (TensorSpec("input", "float32", (None, 1, 8, 8)),)
        assert b.output_specs == (TensorSpec("logits", "float32", (None, 10)),)
        full = b.predict({"input": images})["logits"]
        assert full.shape == (16, 10)
        # Smaller, then the same size again: results agree row for row.
        np.testing.assert_allclose(b.predict({"input": images[:3]})["logits"], full[:3], atol=1e-5)
        np.testing.assert_allclose(b.predict({"input": images[3:4]})["logits"], full[3:4], atol=1e-5)
        again = b.predict({"input": images})["logits"]
        np.testing.assert_allclose(again, full, atol=1e-6)
        described = b.describe()
    assert described["backend"] == "tflite" and described["device"] == "cpu" and described["precision"] == "fp32"
    assert described["provider"] == "LiteRT interpreter" + (" + XNNPACK" if xnnpack else "")


def test_bad_inputs(digits_tflite: ModelSpec, images: np.ndarray) -> None:
    with TfLiteBackend(digits_tflite) as b:
        with pytest.raises(EngineError, match="unknown input 'pixels'; the model takes input") as err:
            b.predict({"pixels": images})
        assert err.value.permanent
        with pytest.raises(EngineError, match="^LiteRT failed to run the model") as err:
            b.predict({"input": np.zeros((2, 1, 7, 8), np.float32)})
        assert err.value.permanent
        with pytest.raises(EngineError, match="^LiteRT failed to run the model"):
            b.predict({"input": np.zeros((2, 1, 8, 8), np.int32)})
        # A failed call leaves the interpreter usable.
        assert b.predict({"input": images[:2]})["logits"].shape == (2, 10)


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"", InvalidArtifact, "not a TFLite model: the file identifier is b'', not b'TFL3'"),
        (b"\x08\x07\x12\x07pytorch", InvalidArtifact, "not a TFLite model: the file identifier"),
    ],
    ids=["empty", "onnx-bytes"],
)
def test_not_tflite(tmp_path: Path, data: bytes, error: type, message: str) -> None:
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    with pytest.raises(error, match=message):
        TfLiteBackend(ModelSpec(str(path), "tflite", "")).load()


def test_truncated_model(tmp_path: Path, digits_tflite: ModelSpec) -> None:
    path = tmp_path / "private" / "t.tflite"
    path.parent.mkdir()
    path.write_bytes(Path(digits_tflite.path).read_bytes()[:5000])
    with pytest.raises(InvalidArtifact, match="truncated or corrupt") as err:
        TfLiteBackend(ModelSpec(str(path), "tflite", "")).load()
    assert "private" not in err.value.message


def test_missing_file_device_and_options(tmp_path: Path, digits_tflite: ModelSpec) -> None:
    with pytest.raises(EngineError, match="missing on the worker") as err:
        TfLiteBackend(ModelSpec(str(tmp_path / "gone.tflite"), "tflite", "")).load()
    assert not err.value.permanent
    with pytest.raises(BackendUnavailable, match="device 'cuda' is not supported; it runs on: cpu"):
        TfLiteBackend(digits_tflite, device="cuda").load()
    with pytest.raises(EngineError, match="precision 'fp16' is not available here"):
        TfLiteBackend(digits_tflite, options={"precision": "fp16"}).load()
    with pytest.raises(EngineError, match="xnnpack must be true or false"):
        TfLiteBackend(digits_tflite, options={"xnnpack": "yes"}).load()
