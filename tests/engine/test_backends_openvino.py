"""The OpenVINO backend: ONNX and IR models on the CPU, clear errors for everything it cannot run."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import openvino
import pytest

from workers.engine.errors import BackendUnavailable, EngineError, InvalidArtifact
from workers.engine.inference.openvino import OpenVinoBackend
from workers.engine.types import ModelSpec, TensorSpec

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture(scope="module")
def digits_onnx() -> ModelSpec:
    return ModelSpec(str(FIXTURES / "digits_cnn.onnx"), "onnx", "")


@pytest.fixture(scope="module")
def digits_ir() -> ModelSpec:
    return ModelSpec(str(FIXTURES / "digits_cnn.xml"), "openvino", "", weights_path=str(FIXTURES / "digits_cnn.bin"))


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.load(FIXTURES / "digits_test.npz")["input"][:16]


def test_probe() -> None:
    info = OpenVinoBackend.probe()
    assert info["version"] == openvino.__version__
    assert info["devices"][0] == "cpu" and info["devices"][-1] == "auto"
    assert "fp32" in info["precisions"]
    assert info["formats"] == ["onnx", "openvino"]


def test_supports() -> None:
    assert OpenVinoBackend.supports(ModelSpec("m.onnx", "onnx", ""))
    assert OpenVinoBackend.supports(ModelSpec("m.xml", "openvino", "", "m.bin"))
    assert not OpenVinoBackend.supports(ModelSpec("m.pt", "torchscript", ""))


@pytest.mark.parametrize("which", ["digits_onnx", "digits_ir"])
def test_predict_and_describe(request: pytest.FixtureRequest, which: str, images: np.ndarray) -> None:
    spec = request.getfixturevalue(which)
    with OpenVinoBackend(spec, options={"threads": 1, "performance_hint": "latency"}) as b:
        assert b.input_specs == (TensorSpec("input", "float32", (None, 1, 8, 8)),)
        assert b.output_specs == (TensorSpec("logits", "float32", (None, 10)),)
        out = b.predict({"input": images})
        assert list(out) == ["logits"] and out["logits"].shape == (16, 10)
        first = out["logits"].copy()
        # The request's output memory is reused: earlier results must not change.
        b.predict({"input": images[:3]})
        np.testing.assert_array_equal(out["logits"], first)
        assert b.describe() == {
            "backend": "openvino",
            "version": openvino.__version__,
            "provider": "CPU",
            "device": "cpu",
            "precision": "fp32",
        }
    assert not b.loaded


def test_auto_device_reports_what_it_chose(digits_onnx: ModelSpec, images: np.ndarray) -> None:
    with OpenVinoBackend(digits_onnx, device="auto") as b:
        b.predict({"input": images[:2]})
        described = b.describe()
    assert described["device"] == "auto"
    assert described["provider"] in ("CPU", "GPU", "GPU.0", "NPU") or "CPU" in described["provider"]
    assert described["precision"] == "fp32"


def test_inputs_are_converted_and_not_modified(digits_onnx: ModelSpec, images: np.ndarray) -> None:
    with OpenVinoBackend(digits_onnx) as b:
        reference = b.predict({"input": images})["logits"]
        as_float64 = images.astype(np.float64)
        np.testing.assert_allclose(b.predict({"input": as_float64})["logits"], reference, rtol=1e-6)
        strided = np.asfortranarray(images)
        np.testing.assert_allclose(b.predict({"input": strided})["logits"], reference, rtol=1e-6)
        readonly = images.copy()
        readonly.flags.writeable = False
        np.testing.assert_allclose(b.predict({"input": readonly})["logits"], reference, rtol=1e-6)


@pytest.mark.parametrize(
    ("fixture", "ops"),
    [
        ("breast_cancer_logreg.onnx", "ai.onnx.ml:LinearClassifier, ai.onnx.ml:Scaler"),
        ("diabetes_ridge.onnx", "ai.onnx.ml:LinearRegressor"),
    ],
)
def test_onnx_ml_models_name_the_unsupported_operators(fixture: str, ops: str) -> None:
    with pytest.raises(EngineError) as err:
        OpenVinoBackend(ModelSpec(str(FIXTURES / fixture), "onnx", "")).load()
    assert err.value.message == (
        f"openvino cannot run this model: unsupported operators {ops}; "
        "run it with the onnxruntime backend, which implements them"
    )
    assert err.value.permanent


def test_garbage_onnx_is_invalid_artifact(tmp_path: Path) -> None:
    path = tmp_path / "private-folder" / "m.onnx"
    path.parent.mkdir()
    path.write_bytes(b"definitely not onnx")
    with pytest.raises(InvalidArtifact, match="^OpenVINO cannot read the model") as err:
        OpenVinoBackend(ModelSpec(str(path), "onnx", "")).load()
    assert "private-folder" not in err.value.message


def test_ir_without_or_with_the_wrong_weights(tmp_path: Path, digits_ir: ModelSpec) -> None:
    with pytest.raises(InvalidArtifact, match="needs its .bin weights file"):
        OpenVinoBackend(ModelSpec(digits_ir.path, "openvino", "")).load()
    short = tmp_path / "short.bin"
    short.write_bytes(Path(digits_ir.weights_path or "").read_bytes()[:100])
    with pytest.raises(InvalidArtifact, match="^OpenVINO cannot read the model") as err:
        OpenVinoBackend(ModelSpec(digits_ir.path, "openvino", "", weights_path=str(short))).load()
    assert str(tmp_path) not in err.value.message


def test_missing_file_is_transient(tmp_path: Path, digits_ir: ModelSpec) -> None:
    with pytest.raises(EngineError, match="missing on the worker") as err:
        OpenVinoBackend(ModelSpec(str(tmp_path / "gone.onnx"), "onnx", "")).load()
    assert not err.value.permanent
    xml = tmp_path / "m.xml"
    shutil.copy(digits_ir.path, xml)
    with pytest.raises(EngineError, match="missing on the worker"):
        OpenVinoBackend(ModelSpec(str(xml), "openvino", "", weights_path=str(tmp_path / "m.bin"))).load()


def test_bad_inputs_are_permanent_errors(digits_onnx: ModelSpec, images: np.ndarray) -> None:
    with OpenVinoBackend(digits_onnx) as b:
        with pytest.raises(EngineError, match="the model takes inputs input; got pixels") as err:
            b.predict({"pixels": images})
        assert err.value.permanent
        with pytest.raises(EngineError, match="the model takes inputs input; got none"):
            b.predict({})
        with pytest.raises(EngineError, match="^OpenVINO failed to run the model") as err:
            b.predict({"input": np.zeros((2, 1, 7, 8), np.float32)})
        assert err.value.permanent
        assert "Exception from" not in err.value.message


def test_devices_this_worker_lacks(digits_onnx: ModelSpec) -> None:
    with pytest.raises(BackendUnavailable, match="device 'cuda' is not supported; it runs on: cpu, gpu"):
        OpenVinoBackend(digits_onnx, device="cuda").load()
    if not any(d.startswith("GPU") for d in openvino.Core().available_devices):
        with pytest.raises(BackendUnavailable, match="no OpenVINO GPU device on this worker \\(available: CPU"):
            OpenVinoBackend(digits_onnx, device="gpu").load()


def test_fp16_only_where_the_device_computes_in_it(digits_onnx: ModelSpec, images: np.ndarray) -> None:
    capabilities = openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    backend = OpenVinoBackend(digits_onnx, options={"precision": "fp16"})
    if "FP16" in capabilities:
        with backend as b:
            assert b.describe()["precision"] == "fp16"
            assert b.predict({"input": images})["logits"].shape == (16, 10)
    else:
        with pytest.raises(EngineError, match="the CPU device computes in .*FP32.*, not fp16"):
            backend.load()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"precision": "int8"}, "precision 'int8' is not available here; choose one of fp32, fp16"),
        ({"threads": 0}, "threads must be an integer >= 1"),
        ({"performance_hint": "fast"}, "performance_hint must be one of latency, throughput"),
        ({"num_streams": 2}, "unknown openvino backend options: num_streams"),
    ],
)
def test_option_validation(digits_onnx: ModelSpec, options: dict, message: str) -> None:
    with pytest.raises(EngineError, match=message):
        OpenVinoBackend(digits_onnx, options=options).load()


def test_use_before_load(digits_onnx: ModelSpec) -> None:
    backend = OpenVinoBackend(digits_onnx)
    with pytest.raises(EngineError, match="before load"):
        backend.predict({})
    backend.unload()  # harmless before load


def test_alternating_large_and_small_batches_never_touch_caller_memory(digits_onnx: ModelSpec) -> None:
    """Large inputs are shared with the request, small ones copied into its own tensor:
    switching between the two must not write into an array a caller lent earlier."""
    import onnxruntime as ort

    sample = np.load(FIXTURES / "digits_test.npz")["input"]
    session = ort.InferenceSession(digits_onnx.path, providers=["CPUExecutionProvider"])
    big = np.ascontiguousarray(np.concatenate([sample] * 40))  # 14400 x 256 bytes: shared
    big_copy = big.copy()
    with OpenVinoBackend(digits_onnx) as backend:
        # Same shape, new data, twice in a row: the copy into the bound tensor must take.
        for batch in (big, sample[:3], sample[3:6], sample[:3], big, sample[:1], sample[5:9], sample[9:13]):
            (logits,) = backend.predict({"input": batch}).values()
            (expected,) = session.run(None, {"input": batch})
            np.testing.assert_allclose(logits, expected, atol=1e-4)
            assert backend.runtime_latency_ns() > 0
    np.testing.assert_array_equal(big, big_copy)
