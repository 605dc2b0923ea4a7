"""Explanation methods on the breast-cancer MLP: validation, the differentiable form, IG completeness, and agreement
between ONNX Runtime and the PyTorch form of the same model."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workers.engine.errors import EngineError
from workers.engine.explain.forward import Forward
from workers.engine.explain.methods import Inputs, run_method
from workers.engine.explain.params import METHODS, parse_method
from workers.engine.explain.torch_form import load_torch_form
from workers.engine.explain.trust import additivity_errors, completeness_errors
from workers.engine.types import ModelSpec

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
shap = pytest.importorskip("shap")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    spec = importlib.util.spec_from_file_location("build_explain_models", ROOT / "scripts" / "build_explain_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build(tmp_path_factory.mktemp("explain_models"))


@pytest.fixture(scope="module")
def data(fixtures_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    train = pd.read_csv(fixtures_dir / "breast_cancer.csv").iloc[:, :-1].to_numpy(np.float64)
    test = pd.read_csv(fixtures_dir / "breast_cancer_test.csv").iloc[:, :-1].to_numpy(np.float64)
    return train, test


@pytest.fixture(scope="module")
def ort_predict(mlp):
    sess = ort.InferenceSession(str(mlp["onnx"]), providers=["CPUExecutionProvider"])
    return lambda x: sess.run(None, {"input": np.asarray(x, dtype=np.float32)})[0]


@pytest.fixture(scope="module")
def forms(mlp, data, ort_predict):
    train, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converted = load_torch_form(
            ModelSpec(str(mlp["onnx"]), "onnx", "x"), check_rows=train[:64], onnx_predict=ort_predict
        )
    scripted = load_torch_form(ModelSpec(str(mlp["torchscript"]), "torchscript", "x"))
    return {"onnx2torch": converted, "torchscript": scripted}


def _inputs(x: np.ndarray, train: np.ndarray, targets: np.ndarray, **kw) -> Inputs:
    bg = shap.kmeans(train, 8)
    return Inputs(
        x=x,
        baseline=train.mean(axis=0, keepdims=True),
        background=kw.get("background", bg.data),
        background_weights=kw.get("weights", bg.weights),
        groups=None,
        targets=targets,
    )


def test_parameters_are_validated_before_running() -> None:
    with pytest.raises(EngineError, match="unknown explanation method 'shapely'"):
        parse_method("shapely", {})
    with pytest.raises(EngineError) as err:
        parse_method("integrated_gradients", {"n_steps": 1, "method": "simpson", "stepz": 3, "seed": "1"})
    text = str(err.value)
    assert "n_steps must be at least 2" in text and "method must be one of" in text
    assert "unknown parameter 'stepz'" in text and "seed must be an integer" in text
    info, params = parse_method("kernel_shap", {"nsamples": 300})
    assert info.kind == "perturbation" and params.nsamples == 300 and params.seed == 0


def test_gradient_methods_need_a_differentiable_form(fixtures_dir: Path, data) -> None:
    train, test = data
    info, params = parse_method("saliency", {})
    with pytest.raises(EngineError, match="gradient method and needs a differentiable PyTorch form"):
        run_method(info, params, _inputs(test[:1], train, np.array([0])), forward=Forward(lambda x: x), torch_form=None)
    with pytest.raises(EngineError, match="a openvino model has none"):
        load_torch_form(ModelSpec("model.xml", "openvino", "x"))
    # scikit-learn's ONNX-ML operators have no PyTorch converter: named in the message.
    with pytest.raises(EngineError, match=r"ai\.onnx\.ml:LinearClassifier.*ai\.onnx\.ml:Scaler"):
        load_torch_form(ModelSpec(str(fixtures_dir / "breast_cancer_logreg.onnx"), "onnx", "x"))


def test_converted_onnx_is_checked_against_onnx_runtime(forms) -> None:
    check = forms["onnx2torch"].check
    assert check["rows"] == 64 and check["max_abs_diff"] < 1e-5


def test_integrated_gradients_completeness_below_one_percent_with_default_steps(forms, data, ort_predict) -> None:
    train, test = data
    x = test[:40]
    targets = ort_predict(x).argmax(axis=1)
    inputs = _inputs(x, train, targets)
    info, params = parse_method("integrated_gradients", {})
    out = run_method(info, params, inputs, forward=Forward(ort_predict), torch_form=forms["torchscript"])
    f_base = ort_predict(inputs.baseline)[0][targets]
    errors = completeness_errors(out.deltas, out.outputs, f_base)
    assert errors.max() < 0.01, errors.max()
    assert out.steps.min() == 50  # most rows converge with the first 50 steps
    # The delta is captum's: sum of attributions minus the output change.
    np.testing.assert_allclose(out.values.sum(axis=1) - (out.outputs - f_base), out.deltas, atol=2e-5)


def test_onnx_runtime_and_pytorch_form_give_the_same_attributions(forms, data, ort_predict) -> None:
    train, test = data
    x = test[:6]
    targets = ort_predict(x).argmax(axis=1)
    inputs = _inputs(x, train, targets)
    module = forms["torchscript"].module

    def torch_predict(a: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(np.asarray(a, dtype=np.float32))).numpy()

    for name, params in [("kernel_shap", {"nsamples": 256}), ("shapley_value_sampling", {"n_samples": 5})]:
        info, p = parse_method(name, params)
        via_ort = run_method(info, p, inputs, forward=Forward(ort_predict))
        via_torch = run_method(info, p, inputs, forward=Forward(torch_predict))
        np.testing.assert_allclose(via_ort.values, via_torch.values, atol=2e-5)
    info, p = parse_method("integrated_gradients", {"target_delta": 0})
    a = run_method(info, p, inputs, forward=Forward(ort_predict), torch_form=forms["onnx2torch"])
    b = run_method(info, p, inputs, forward=Forward(ort_predict), torch_form=forms["torchscript"])
    np.testing.assert_allclose(a.values, b.values, atol=1e-5)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_runs_in_the_users_columns(name: str, forms, data, ort_predict) -> None:
    train, test = data
    x = test[:2]
    targets = ort_predict(x).argmax(axis=1)
    small = {
        "kernel_shap": {"nsamples": 128},
        "shap_kernel": {"nsamples": 128},
        "shap_permutation": {"max_evals": 200},
        "shap_partition": {"max_evals": 100},
        "shap_gradient": {"nsamples": 20},
        "captum_kernel_shap": {"n_samples": 64},
        "lime": {"n_samples": 64},
        "shapley_value_sampling": {"n_samples": 2},
    }.get(name, {})
    info, params = parse_method(name, small)
    if name == "exact_shapley":
        with pytest.raises(EngineError, match="2\\*\\*30 coalitions"):
            run_method(info, params, _inputs(x, train, targets), forward=Forward(ort_predict))
        return
    bg = train[:: len(train) // 8][:8]
    inputs = _inputs(x, train, targets, background=bg, weights=None)
    forward = Forward(ort_predict)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = run_method(info, params, inputs, forward=forward, torch_form=forms["onnx2torch"])
    assert out.values.shape == (2, 30) and np.isfinite(out.values).all()
    np.testing.assert_allclose(out.outputs, ort_predict(x)[np.arange(2), targets], rtol=1e-6)
    if name in ("kernel_shap", "shap_kernel", "shap_permutation"):
        assert additivity_errors(out.values, out.base_values, out.outputs).max() < 1e-4
    if info.kind == "perturbation":
        assert forward.stats.rows > 2  # the model ran through the forward function, in batches
