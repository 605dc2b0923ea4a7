"""Parity: the same model gives the same outputs on every engine.

The digits CNN from scripts/build_models.py runs on ONNX Runtime, OpenVINO
(from the ONNX file and from IR), torch (TorchScript) and LiteRT (TFLite);
scikit-learn models run on ONNX Runtime and are refused by OpenVINO with the
operators it lacks. GPU parity (TensorRT vs ONNX Runtime CUDA vs CPU) is
marked ``gpu``. EfficientNet-Lite0 runs only when its cached ONNX file exists.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from workers.engine.errors import EngineError
from workers.engine.inference._common import cuda_devices
from workers.engine.inference.registry import get_backend_class
from workers.engine.types import ModelSpec

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
EFFICIENTNET = (
    Path(os.environ.get("EVALSVC_MODEL_CACHE", ROOT / "var" / "cache" / "models")) / "efficientnet_lite0.onnx"
)
ATOL = 1e-4

DIGITS = {
    "onnxruntime": ModelSpec(str(FIXTURES / "digits_cnn.onnx"), "onnx", ""),
    "openvino (onnx)": ModelSpec(str(FIXTURES / "digits_cnn.onnx"), "onnx", ""),
    "openvino (IR)": ModelSpec(str(FIXTURES / "digits_cnn.xml"), "openvino", "", str(FIXTURES / "digits_cnn.bin")),
    "torch": ModelSpec(str(FIXTURES / "digits_cnn.pt"), "torchscript", ""),
    "tflite": ModelSpec(str(FIXTURES / "digits_cnn.tflite"), "tflite", ""),
}


def _backend(label: str) -> str:
    return label.split(" ")[0]


@pytest.fixture(scope="module")
def digits_test() -> tuple[np.ndarray, np.ndarray]:
    data = np.load(FIXTURES / "digits_test.npz")
    return data["input"], data["label"]


@pytest.fixture(scope="module")
def digits_outputs(digits_test: tuple[np.ndarray, np.ndarray]) -> dict[str, dict[int, np.ndarray]]:
    """Logits of every engine for the full test set and for batches of 1 and 7."""
    images, _ = digits_test
    found: dict[str, dict[int, np.ndarray]] = {}
    for label, spec in DIGITS.items():
        with get_backend_class(_backend(label))(spec) as backend:
            (name,) = [o.name for o in backend.output_specs] or ["output"]
            found[label] = {
                len(images): backend.predict({"input": images})[name],
                1: backend.predict({"input": images[:1]})[name],
                7: backend.predict({"input": images[10:17]})[name],
            }
    return found


@pytest.mark.parametrize("label", [k for k in DIGITS if k != "onnxruntime"])
def test_digits_cnn_matches_onnxruntime(
    label: str, digits_outputs: dict[str, dict[int, np.ndarray]], digits_test: tuple[np.ndarray, np.ndarray]
) -> None:
    images, _ = digits_test
    reference, got = digits_outputs["onnxruntime"], digits_outputs[label]
    full = len(images)
    assert got[full].shape == reference[full].shape == (full, 10)
    assert np.abs(got[full] - reference[full]).max() < ATOL
    np.testing.assert_array_equal(got[full].argmax(1), reference[full].argmax(1))
    # Batch size does not change a row's result.
    assert np.abs(got[1] - reference[full][:1]).max() < ATOL
    assert np.abs(got[7] - reference[full][10:17]).max() < ATOL


def test_digits_cnn_is_accurate(
    digits_outputs: dict[str, dict[int, np.ndarray]], digits_test: tuple[np.ndarray, np.ndarray]
) -> None:
    images, labels = digits_test
    for label, outputs in digits_outputs.items():
        accuracy = float((outputs[len(images)].argmax(1) == labels).mean())
        assert accuracy > 0.97, label


# ---------------------------------------------------- scikit-learn (ONNX-ML) models


@pytest.fixture(scope="module")
def forest_onnx(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelSpec, np.ndarray, np.ndarray]:
    """A random forest with skl2onnx's default ZipMap output: TreeEnsembleClassifier + ZipMap + Cast."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    data = load_iris()
    forest = RandomForestClassifier(n_estimators=4, max_depth=3, random_state=0).fit(data.data, data.target)
    model = convert_sklearn(forest, initial_types=[("input", FloatTensorType([None, 4]))], target_opset=17)
    path = tmp_path_factory.mktemp("skl") / "forest.onnx"
    path.write_bytes(model.SerializeToString())
    x = data.data[::10].astype(np.float32)
    return ModelSpec(str(path), "onnx", ""), x, forest.predict_proba(x)


def test_sklearn_fixture_models_run_on_onnxruntime() -> None:
    cancer = np.loadtxt(FIXTURES / "breast_cancer_test.csv", delimiter=",", skiprows=1, dtype=np.float64)
    x, y = cancer[:, :-1].astype(np.float32), cancer[:, -1].astype(np.int64)
    ort = get_backend_class("onnxruntime")
    with ort(ModelSpec(str(FIXTURES / "breast_cancer_logreg.onnx"), "onnx", "")) as backend:
        out = backend.predict({"input": x})
    np.testing.assert_allclose(out["probabilities"].sum(axis=1), 1.0, rtol=1e-5)
    assert (out["label"] == y).mean() > 0.95
    with ort(ModelSpec(str(FIXTURES / "diabetes_ridge.onnx"), "onnx", "")) as backend:
        assert backend.predict({"input": np.zeros((3, 10), np.float32)})["variable"].shape == (3, 1)


def test_sklearn_forest_runs_on_onnxruntime(forest_onnx: tuple[ModelSpec, np.ndarray, np.ndarray]) -> None:
    spec, x, expected = forest_onnx
    with get_backend_class("onnxruntime")(spec) as backend:
        out = backend.predict({"input": x})
    np.testing.assert_allclose(out["output_probability"], expected, atol=1e-6)


@pytest.mark.parametrize(
    ("model", "ops"),
    [
        ("breast_cancer_logreg.onnx", "ai.onnx.ml:LinearClassifier, ai.onnx.ml:Scaler"),
        ("diabetes_ridge.onnx", "ai.onnx.ml:LinearRegressor"),
        ("forest", "ai.onnx.ml:TreeEnsembleClassifier, ai.onnx.ml:ZipMap"),
    ],
)
def test_openvino_names_the_onnx_ml_operators_it_lacks(
    model: str, ops: str, forest_onnx: tuple[ModelSpec, np.ndarray, np.ndarray]
) -> None:
    spec = forest_onnx[0] if model == "forest" else ModelSpec(str(FIXTURES / model), "onnx", "")
    with pytest.raises(EngineError) as err:
        get_backend_class("openvino")(spec).load()
    assert err.value.message.startswith(f"openvino cannot run this model: unsupported operators {ops}")
    assert err.value.permanent


# ------------------------------------------------------------------ EfficientNet-Lite0


@pytest.mark.skipif(
    not EFFICIENTNET.exists(), reason="EfficientNet-Lite0 is not cached: python scripts/build_models.py --efficientnet"
)
def test_efficientnet_lite0_onnxruntime_vs_openvino_on_a_cat() -> None:
    pytest.importorskip("skimage")
    import importlib.util

    script = importlib.util.spec_from_file_location("build_models", ROOT / "scripts" / "build_models.py")
    assert script is not None and script.loader is not None
    build_models = importlib.util.module_from_spec(script)
    script.loader.exec_module(build_models)
    from skimage import data as skdata

    image = build_models.preprocess(skdata.chelsea())
    spec = ModelSpec(str(EFFICIENTNET), "onnx", "")
    logits = {}
    for name in ("onnxruntime", "openvino"):
        with get_backend_class(name)(spec) as backend:
            logits[name] = backend.predict({"input": image})["logits"]
    assert np.abs(logits["openvino"] - logits["onnxruntime"]).max() < 1e-3
    top = int(logits["onnxruntime"].argmax())
    assert 281 <= top <= 285, f"top-1 class {top} is not a cat"
    assert int(logits["openvino"].argmax()) == top


# ------------------------------------------------------------------------------ GPU


@pytest.fixture(scope="module")
def cuda_ready() -> None:
    import importlib.util

    import onnxruntime

    found, reason = cuda_devices()
    if not found:
        pytest.skip(f"no CUDA device: {reason}")
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime is the CPU build (pip install evalsvc[gpu])")
    if importlib.util.find_spec("tensorrt") is None:
        pytest.skip("tensorrt is not installed (pip install evalsvc[gpu])")


@pytest.mark.gpu
def test_tensorrt_vs_onnxruntime_cuda_vs_cpu(
    cuda_ready: None, tmp_path: Path, digits_outputs: dict[str, dict[int, np.ndarray]], digits_test: tuple
) -> None:
    images, _ = digits_test
    reference = digits_outputs["onnxruntime"][len(images)]
    spec = DIGITS["onnxruntime"]
    runs = {
        "ort-cuda": ("onnxruntime", {}),
        "ort-tensorrt-ep": ("onnxruntime", {"provider": "tensorrt", "cache_dir": str(tmp_path / "ep")}),
        "tensorrt": ("tensorrt", {"cache_dir": str(tmp_path / "trt")}),
    }
    for label, (name, options) in runs.items():
        with get_backend_class(name)(spec, device="cuda", options=options) as backend:
            got = backend.predict({"input": images})["logits"]
            described = backend.describe()
        assert np.abs(got - reference).max() < 1e-3, label
        np.testing.assert_array_equal(got.argmax(1), reference.argmax(1))
        assert described["device"] == "cuda" and described["precision"] == "fp32", label
    assert described["provider"].startswith("TensorRT on ")
