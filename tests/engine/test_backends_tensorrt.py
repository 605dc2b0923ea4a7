"""The TensorRT backend: what can be checked without a GPU, and the GPU paths (marked ``gpu``)."""

from __future__ import annotations

import importlib.util
import types
from pathlib import Path

import numpy as np
import pytest

from workers.engine.errors import BackendUnavailable, EngineError
from workers.engine.inference import tensorrt as trt_backend
from workers.engine.inference._common import cuda_devices, unsupported_operators
from workers.engine.inference.onnxruntime import OnnxRuntimeBackend
from workers.engine.inference.tensorrt import TensorRtBackend, engine_cache_path
from workers.engine.types import ModelSpec

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SHA = "ab" * 32
HAVE_TENSORRT = importlib.util.find_spec("tensorrt") is not None


@pytest.fixture(scope="module")
def digits() -> ModelSpec:
    return ModelSpec(str(FIXTURES / "digits_cnn.onnx"), "onnx", "")


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.load(FIXTURES / "digits_test.npz")["input"]


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend TensorRT and one GPU exist, to reach the checks that come before any CUDA call."""
    fake = types.SimpleNamespace(__version__="10.0.0")
    monkeypatch.setattr(trt_backend, "_import_tensorrt", lambda: fake)
    monkeypatch.setattr(trt_backend, "cuda_devices", lambda: (({"name": "Fake GPU", "cc": "9.0"},), ""))


@pytest.fixture
def gpu(digits: ModelSpec) -> None:
    """Skip unless TensorRT and a CUDA device are both here."""
    if not HAVE_TENSORRT:
        pytest.skip("tensorrt is not installed (pip install evalsvc[gpu])")
    found, reason = cuda_devices()
    if not found:
        pytest.skip(f"no CUDA device: {reason}")


def test_probe_without_tensorrt_or_gpu() -> None:
    if HAVE_TENSORRT and cuda_devices()[0]:
        pytest.skip("TensorRT and a GPU are present: the gpu tests cover this")
    with pytest.raises(BackendUnavailable) as err:
        TensorRtBackend.probe()
    if not HAVE_TENSORRT:
        assert err.value.message == (
            "backend 'tensorrt' is unavailable: tensorrt is not installed (pip install evalsvc[gpu])"
        )
    else:
        assert err.value.reason == cuda_devices()[1]


def test_cpu_device_is_refused(digits: ModelSpec) -> None:
    with pytest.raises(BackendUnavailable, match="device 'cpu' is not supported; it runs on: cuda, cuda:N"):
        TensorRtBackend(digits).load()


def test_engine_cache_key() -> None:
    base = {"sha256": SHA, "trt_version": "10.3.0", "gpu_name": "NVIDIA H100 80GB HBM3", "precision": "fp16"}
    path = engine_cache_path("/cache", max_batch=64, **base)
    assert path == f"/cache/{SHA}_NVIDIA-H100-80GB-HBM3_trt10.3.0_fp16_b64.engine"
    variants = {
        engine_cache_path("/cache", max_batch=64, **{**base, key: value})
        for key, value in [
            ("sha256", "cd" * 32),
            ("trt_version", "10.4.0"),
            ("gpu_name", "NVIDIA A100-SXM4-40GB"),
            ("precision", "int8"),
        ]
    }
    variants.add(engine_cache_path("/cache", max_batch=8, **base))
    assert len(variants) == 5 and path not in variants
    with pytest.raises(EngineError, match="needs the model's SHA-256"):
        engine_cache_path("/cache", max_batch=1, **{**base, "sha256": "../../etc/passwd"})


@pytest.mark.parametrize(
    ("fixture", "ops"),
    [
        ("breast_cancer_logreg.onnx", "ai.onnx.ml:LinearClassifier, ai.onnx.ml:Scaler"),
        ("diabetes_ridge.onnx", "ai.onnx.ml:LinearRegressor"),
    ],
)
def test_onnx_ml_models_name_the_unsupported_operators(fake_gpu: None, fixture: str, ops: str) -> None:
    spec = ModelSpec(str(FIXTURES / fixture), "onnx", "")
    with pytest.raises(EngineError) as err:
        TensorRtBackend(spec, device="cuda").load()
    assert err.value.message.startswith(f"tensorrt cannot run this model: unsupported operators {ops};")
    assert err.value.permanent
    assert unsupported_operators(spec.path) == ops.split(", ")


def test_int8_needs_calibration(fake_gpu: None, digits: ModelSpec) -> None:
    with pytest.raises(EngineError, match="int8 needs a calibrated model: upload a quantised \\(QDQ\\) ONNX model"):
        TensorRtBackend(digits, device="cuda", options={"precision": "int8"}).load()
    with pytest.raises(EngineError, match="calibration_data must be a non-empty array"):
        TensorRtBackend(digits, device="cuda", options={"precision": "int8", "calibration_data": np.zeros(0)}).load()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"precision": "bf16"}, "precision 'bf16' is not available here; choose one of fp32, fp16, int8"),
        ({"max_batch": 0}, "max_batch must be an integer >= 1"),
        ({"max_batch": 8, "opt_batch": 16}, "opt_batch \\(16\\) cannot exceed max_batch \\(8\\)"),
        ({"workers": 2}, "unknown tensorrt backend options: workers"),
    ],
)
def test_option_validation(digits: ModelSpec, options: dict, message: str) -> None:
    with pytest.raises(EngineError, match=message):
        TensorRtBackend(digits, device="cuda", options=options).load()


def test_no_gpu_is_unavailable(monkeypatch: pytest.MonkeyPatch, digits: ModelSpec) -> None:
    monkeypatch.setattr(trt_backend, "_import_tensorrt", lambda: types.SimpleNamespace(__version__="10.0.0"))
    monkeypatch.setattr(trt_backend, "cuda_devices", lambda: ((), "no CUDA device"))
    with pytest.raises(BackendUnavailable, match="unavailable: no CUDA device$"):
        TensorRtBackend(digits, device="cuda").load()
    with pytest.raises(BackendUnavailable, match="unavailable: no CUDA device$"):
        TensorRtBackend.probe()


# ------------------------------------------------------------------------ GPU


@pytest.mark.gpu
@pytest.mark.parametrize(("precision", "atol"), [("fp32", 1e-3), ("fp16", 5e-2)])
def test_engine_matches_onnxruntime_cpu(
    gpu: None, tmp_path: Path, digits: ModelSpec, images: np.ndarray, precision: str, atol: float
) -> None:
    with OnnxRuntimeBackend(digits) as cpu:
        reference = cpu.predict({"input": images})["logits"]
    options = {"precision": precision, "cache_dir": str(tmp_path), "max_batch": 64}
    with TensorRtBackend(digits, device="cuda", options=options) as b:
        assert not b.cache_hit
        # 360 rows: more than max_batch, so this also runs in chunks.
        out = b.predict({"input": images})["logits"]
        single = b.predict({"input": images[:1]})["logits"]
        described = b.describe()
    np.testing.assert_allclose(out, reference, atol=atol)
    np.testing.assert_allclose(single, reference[:1], atol=atol)
    assert (out.argmax(1) == reference.argmax(1)).mean() >= (1.0 if precision == "fp32" else 0.99)
    assert described["backend"] == "tensorrt" and described["precision"] == precision
    assert described["provider"].startswith("TensorRT on ")
    # The second load finds the engine in the cache, under the documented key.
    with TensorRtBackend(digits, device="cuda", options=options) as again:
        assert again.cache_hit
        np.testing.assert_allclose(again.predict({"input": images[:8]})["logits"], out[:8], atol=1e-6)
        name = Path(again.engine_path).name
    assert name.endswith(f"_{precision}_b64.engine") and "_trt" in name


@pytest.mark.gpu
def test_int8_with_calibration_data(gpu: None, tmp_path: Path, digits: ModelSpec, images: np.ndarray) -> None:
    with OnnxRuntimeBackend(digits) as cpu:
        reference = cpu.predict({"input": images})["logits"]
    options = {"precision": "int8", "calibration_data": images[:256], "cache_dir": str(tmp_path)}
    with TensorRtBackend(digits, device="cuda", options=options) as b:
        out = b.predict({"input": images})["logits"]
        assert b.describe()["precision"] == "int8"
    assert (out.argmax(1) == reference.argmax(1)).mean() >= 0.95


def test_cuda_driver_without_libcuda() -> None:
    import ctypes

    from workers.engine.inference._common import CudaDriver

    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        pass
    else:
        pytest.skip("this machine has the CUDA driver")
    with pytest.raises(BackendUnavailable, match="backend 'tensorrt' is unavailable: no CUDA driver"):
        CudaDriver(0, backend="tensorrt")
