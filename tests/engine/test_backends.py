"""The backend registry and the ONNX Runtime backend (CPU; CUDA and TensorRT providers where present)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from workers.engine.errors import BackendUnavailable, EngineError, InvalidArtifact
from workers.engine.inference import Backend, backend_names, get_backend_class, probe_backends, registry
from workers.engine.inference.onnxruntime import OnnxRuntimeBackend
from workers.engine.types import ModelSpec, TensorSpec


def test_registry_names_and_lookup() -> None:
    assert backend_names() == ["onnxruntime", "openvino", "tensorrt", "tflite", "torch"]
    cls = get_backend_class("onnxruntime")
    assert cls is OnnxRuntimeBackend
    assert issubclass(cls, Backend)
    assert cls.name == "onnxruntime"


def test_unknown_backend_lists_known_ones() -> None:
    with pytest.raises(
        EngineError, match="unknown backend 'trt'; known backends: onnxruntime, openvino, tensorrt, tflite, torch"
    ) as err:
        get_backend_class("trt")
    assert err.value.permanent


def test_missing_runtime_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.BACKENDS, "ghost", ("no_such_runtime_module:GhostBackend", "pip install ghost"))
    with pytest.raises(BackendUnavailable, match="backend 'ghost' is unavailable: .*no_such_runtime_module") as err:
        get_backend_class("ghost")
    assert err.value.hint == "pip install ghost"
    assert "(pip install ghost)" in err.value.message

    report = {entry["name"]: entry for entry in probe_backends()}
    assert report["ghost"]["available"] is False
    assert "no_such_runtime_module" in report["ghost"]["reason"]
    assert report["ghost"]["precisions"] == [] and report["ghost"]["formats"] == []
    assert report["onnxruntime"]["available"] is True
    assert report["onnxruntime"]["version"] == onnxruntime.__version__
    assert report["onnxruntime"]["devices"][0] == "cpu"
    assert report["onnxruntime"]["precisions"][0] == "fp32"
    assert report["onnxruntime"]["formats"] == ["onnx"]
    assert report["onnxruntime"]["reason"] is None


def test_probe_reports_every_backend_with_precisions_and_formats() -> None:
    report = {entry["name"]: entry for entry in probe_backends()}
    assert sorted(report) == backend_names()
    keys = {"name", "available", "version", "devices", "precisions", "formats", "reason"}
    for name, entry in report.items():
        assert set(entry) == keys, name
        if entry["available"]:
            assert entry["reason"] is None and entry["devices"] and "fp32" in entry["precisions"], name
            assert entry["formats"], name
        else:
            assert name in entry["reason"] and entry["devices"] == [], name
    # Every CPU worker has these; the formats say what each one loads.
    assert report["openvino"]["formats"] == ["onnx", "openvino"]
    assert report["torch"]["formats"] == ["torchscript", "torch_export"]
    assert report["tflite"]["formats"] == ["tflite"]
    assert "cpu" in report["openvino"]["devices"] and "auto" in report["openvino"]["devices"]


def test_tensorrt_without_the_library_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_tensorrt(name: str, *args: object, **kwargs: object) -> object:
        if name == "tensorrt" or name.startswith("tensorrt."):
            raise ImportError("No module named 'tensorrt'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorrt)
    entry = next(e for e in probe_backends() if e["name"] == "tensorrt")
    assert entry["available"] is False
    assert entry["reason"] == "backend 'tensorrt' is unavailable: tensorrt is not installed (pip install evalsvc[gpu])"


def test_supports_only_onnx() -> None:
    assert OnnxRuntimeBackend.supports(ModelSpec("m.onnx", "onnx", ""))
    assert not OnnxRuntimeBackend.supports(ModelSpec("m.pt", "torchscript", ""))


def test_wrong_format_is_refused_at_construction() -> None:
    with pytest.raises(EngineError, match="the onnxruntime backend cannot run 'tflite' models; it loads: onnx"):
        OnnxRuntimeBackend(ModelSpec("m.tflite", "tflite", ""))


def test_predict_and_describe(bc_spec: ModelSpec) -> None:
    backend = OnnxRuntimeBackend(bc_spec, options={"intra_op_num_threads": 1, "graph_optimization_level": "basic"})
    assert not backend.loaded
    with backend as b:
        assert b.loaded
        assert b.input_specs == (TensorSpec("input", "float32", (None, 30)),)
        assert [o.name for o in b.output_specs] == ["label", "probabilities"]
        x = np.random.default_rng(0).normal(size=(5, 30)).astype(np.float32)
        out = b.predict({"input": x})
        assert list(out) == ["label", "probabilities"]
        assert out["label"].shape == (5,) and out["label"].dtype == np.int64
        assert out["probabilities"].shape == (5, 2)
        np.testing.assert_allclose(out["probabilities"].sum(axis=1), 1.0, rtol=1e-6)
        assert b.describe() == {
            "backend": "onnxruntime",
            "version": onnxruntime.__version__,
            "provider": "CPUExecutionProvider",
            "device": "cpu",
            "precision": "fp32",
        }
    assert not backend.loaded


def test_unloads_when_the_body_raises(bc_spec: ModelSpec) -> None:
    backend = OnnxRuntimeBackend(bc_spec)
    with pytest.raises(RuntimeError), backend:
        raise RuntimeError("boom")
    assert not backend.loaded


def test_bad_input_shape_is_a_permanent_error(bc_spec: ModelSpec) -> None:
    with OnnxRuntimeBackend(bc_spec) as b, pytest.raises(EngineError, match="Expected: 30") as err:
        b.predict({"input": np.zeros((2, 29), np.float32)})
    assert err.value.permanent


def test_use_before_load(bc_spec: ModelSpec) -> None:
    backend = OnnxRuntimeBackend(bc_spec)
    with pytest.raises(EngineError, match="before load"):
        backend.predict({})
    with pytest.raises(EngineError, match="before load"):
        _ = backend.input_specs


def test_garbage_model_is_invalid_artifact(tmp_path: Path) -> None:
    path = tmp_path / "secret-worker-path" / "m.onnx"
    path.parent.mkdir()
    path.write_bytes(b"definitely not onnx")
    with pytest.raises(InvalidArtifact, match="ONNX Runtime cannot load the model") as err:
        OnnxRuntimeBackend(ModelSpec(str(path), "onnx", "")).load()
    assert "secret-worker-path" not in err.value.message


def test_missing_file_is_transient(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="missing on the worker") as err:
        OnnxRuntimeBackend(ModelSpec(str(tmp_path / "gone.onnx"), "onnx", "")).load()
    assert not err.value.permanent


def test_unsupported_device(bc_spec: ModelSpec) -> None:
    with pytest.raises(BackendUnavailable, match="device 'tpu' is not supported; it runs on: cpu, cuda, cuda:N"):
        OnnxRuntimeBackend(bc_spec, device="tpu").load()


def test_cuda_without_the_gpu_build_says_why(bc_spec: ModelSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(BackendUnavailable) as err:
        OnnxRuntimeBackend(bc_spec, device="cuda").load()
    assert err.value.reason == "CUDAExecutionProvider is not available: this is the CPU build of onnxruntime"
    assert "onnxruntime" in err.value.hint and err.value.permanent


def test_cuda_provider_without_a_device_says_so(bc_spec: ModelSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    from workers.engine.inference import onnxruntime as ort_backend

    providers = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: providers)
    monkeypatch.setattr(ort_backend, "cuda_devices", lambda: ((), "no CUDA device"))
    with pytest.raises(BackendUnavailable, match="unavailable: no CUDA device$"):
        OnnxRuntimeBackend(bc_spec, device="cuda", options={"provider": "tensorrt"}).load()
    # A GPU build on a machine without a GPU still offers the CPU.
    assert OnnxRuntimeBackend.probe()["devices"] == ["cpu"]


def test_tensorrt_provider_missing_from_the_build(bc_spec: ModelSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    from workers.engine.inference import onnxruntime as ort_backend

    monkeypatch.setattr(
        onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    monkeypatch.setattr(ort_backend, "cuda_devices", lambda: (({"name": "Fake GPU", "cc": "9.0"},), ""))
    with pytest.raises(
        BackendUnavailable, match="TensorrtExecutionProvider is not available in this onnxruntime build"
    ):
        OnnxRuntimeBackend(bc_spec, device="cuda", options={"provider": "tensorrt"}).load()
    with pytest.raises(BackendUnavailable, match="no CUDA device 3: this worker has 1"):
        OnnxRuntimeBackend(bc_spec, device="cuda:3").load()


def test_silent_cpu_fallback_is_reported(bc_spec: ModelSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    # ONNX Runtime drops a GPU provider that fails to start and carries on on the CPU.
    from workers.engine.inference import onnxruntime as ort_backend

    real_session = onnxruntime.InferenceSession
    monkeypatch.setattr(
        onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    monkeypatch.setattr(ort_backend, "cuda_devices", lambda: (({"name": "Fake GPU", "cc": "9.0"},), ""))
    monkeypatch.setattr(
        ort_backend.ort,
        "InferenceSession",
        lambda path, sess_options, providers: real_session(path, sess_options, providers=["CPUExecutionProvider"]),
    )
    with pytest.raises(
        BackendUnavailable, match="CUDAExecutionProvider failed to start .*fell back to CPUExecutionProvider"
    ):
        OnnxRuntimeBackend(bc_spec, device="cuda").load()


@pytest.mark.parametrize(
    ("device", "options", "message"),
    [
        ("cpu", {"precision": "fp16"}, "on the CPU it runs the model in its own types"),
        ("cpu", {"precision": "bf8"}, "precision 'bf8' is not available here; choose one of fp32, fp16"),
        ("cpu", {"provider": "tensorrt"}, "the tensorrt provider needs device 'cuda'"),
        ("cpu", {"provider": "openvino"}, "provider must be 'tensorrt' or unset"),
    ],
)
def test_precision_and_provider_validation(bc_spec: ModelSpec, device: str, options: dict, message: str) -> None:
    with pytest.raises(EngineError, match=message) as err:
        OnnxRuntimeBackend(bc_spec, device=device, options=options).load()
    assert err.value.permanent


def test_missing_and_unknown_inputs(bc_spec: ModelSpec) -> None:
    with OnnxRuntimeBackend(bc_spec) as b:
        with pytest.raises(EngineError, match="missing inputs input \\(the model takes input; got features\\)"):
            b.predict({"features": np.zeros((1, 30), np.float32)})
        with pytest.raises(EngineError, match="Invalid input name: extra"):
            b.predict({"input": np.zeros((1, 30), np.float32), "extra": np.zeros(1, np.float32)})
        with pytest.raises(EngineError, match="Unexpected input data type"):
            b.predict({"input": np.zeros((1, 30), np.float64)})


def test_zipmap_outputs_become_arrays(tmp_path: Path) -> None:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    data = load_iris()
    forest = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(data.data, data.target)
    model = convert_sklearn(forest, initial_types=[("input", FloatTensorType([None, 4]))], target_opset=17)
    path = tmp_path / "forest.onnx"
    path.write_bytes(model.SerializeToString())
    x = data.data[:5].astype(np.float32)
    with OnnxRuntimeBackend(ModelSpec(str(path), "onnx", "")) as b:
        out = b.predict({"input": x})
    assert out["output_probability"].shape == (5, 3)
    np.testing.assert_allclose(out["output_probability"], forest.predict_proba(x), atol=1e-6)
    np.testing.assert_array_equal(out["output_label"], forest.predict(x))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"threads": 2}, "unknown onnxruntime backend options: threads"),
        ({"intra_op_num_threads": -1}, "intra_op_num_threads must be an integer >= 0"),
        ({"inter_op_num_threads": True}, "inter_op_num_threads must be an integer >= 0"),
        ({"graph_optimization_level": "max"}, "graph_optimization_level must be one of"),
    ],
)
def test_option_validation(bc_spec: ModelSpec, options: dict, message: str) -> None:
    with pytest.raises(EngineError, match=message):
        OnnxRuntimeBackend(bc_spec, options=options).load()


def _per_batch(backend: Backend, inputs: dict[str, np.ndarray], batch_size: int) -> dict[str, np.ndarray]:
    rows = len(next(iter(inputs.values())))
    parts = [
        backend.predict({k: v[lo : lo + batch_size] for k, v in inputs.items()}) for lo in range(0, rows, batch_size)
    ]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


@pytest.mark.parametrize("model", ["breast_cancer_logreg.onnx", "diabetes_ridge.onnx", "digits_cnn.onnx"])
@pytest.mark.parametrize("batch_size", [1, 3, 64, 1000])
def test_predict_batches_equals_predict_per_batch(fixtures_dir: Path, model: str, batch_size: int) -> None:
    """The whole-block loop (batch 1 writes rows in place) gives exactly the per-batch outputs, in order."""
    with OnnxRuntimeBackend(ModelSpec(str(fixtures_dir / model), "onnx", "")) as b:
        (spec,) = b.input_specs
        shape = tuple(d if isinstance(d, int) else 1 for d in (spec.shape or (None, 1))[1:])
        x = np.random.default_rng(1).normal(size=(37, *shape)).astype(np.float32)
        got = b.predict_batches({spec.name: x}, batch_size)
        expected = _per_batch(b, {spec.name: x}, batch_size)
    assert list(got) == list(expected)
    for name in expected:
        assert got[name].dtype == expected[name].dtype
        np.testing.assert_array_equal(got[name], expected[name])
        assert len(got[name]) == 37


def test_predict_batches_with_outputs_changing_shape_row_to_row(tmp_path: Path) -> None:
    """A model whose output rows differ in shape falls back to concatenating whole outputs."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("NonZero", ["x"], ["nz"]), helper.make_node("Transpose", ["nz"], ["where"])],
        "nonzero",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("where", TensorProto.INT64, [None, 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "nonzero.onnx"
    onnx.save(model, str(path))
    x = np.array([[0, 1, 0], [1, 1, 0], [0, 0, 0], [2, 3, 4]], dtype=np.float32)  # 1, 2, 0, 3 non-zeros
    with OnnxRuntimeBackend(ModelSpec(str(path), "onnx", "")) as b:
        got = b.predict_batches({"x": x}, 1)
        expected = _per_batch(b, {"x": x}, 1)
    np.testing.assert_array_equal(got["where"], expected["where"])
    assert got["where"].shape == (6, 2)


def test_predict_batches_error_names_the_problem(bc_spec: ModelSpec) -> None:
    with OnnxRuntimeBackend(bc_spec) as b:
        for batch_size in (1, 4):
            with pytest.raises(EngineError, match="Expected: 30") as err:
                b.predict_batches({"input": np.zeros((9, 29), np.float32)}, batch_size)
            assert err.value.permanent
