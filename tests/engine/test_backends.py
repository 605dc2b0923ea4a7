"""The backend registry and the ONNX Runtime backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from workers.backends import Backend, backend_names, get_backend_class, probe_backends, registry
from workers.backends.onnxruntime import OnnxRuntimeBackend
from workers.engine.errors import BackendUnavailable, EngineError, InvalidArtifact
from workers.engine.types import ModelSpec, TensorSpec


def test_registry_names_and_lookup() -> None:
    assert backend_names() == ["onnxruntime"]
    cls = get_backend_class("onnxruntime")
    assert cls is OnnxRuntimeBackend
    assert issubclass(cls, Backend)
    assert cls.name == "onnxruntime"


def test_unknown_backend_lists_known_ones() -> None:
    with pytest.raises(EngineError, match="unknown backend 'tensorrt'; known backends: onnxruntime") as err:
        get_backend_class("tensorrt")
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
    assert report["onnxruntime"] == {
        "name": "onnxruntime",
        "available": True,
        "version": onnxruntime.__version__,
        "devices": ["cpu"],
        "reason": None,
    }


def test_supports_only_onnx() -> None:
    assert OnnxRuntimeBackend.supports(ModelSpec("m.onnx", "onnx", ""))
    assert not OnnxRuntimeBackend.supports(ModelSpec("m.pt", "torchscript", ""))


def test_predict_and_describe(bc_model: ModelSpec) -> None:
    backend = OnnxRuntimeBackend(bc_model, options={"intra_op_num_threads": 1, "graph_optimization_level": "basic"})
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
            "precision": "float32",
        }
    assert not backend.loaded


def test_unloads_when_the_body_raises(bc_model: ModelSpec) -> None:
    backend = OnnxRuntimeBackend(bc_model)
    with pytest.raises(RuntimeError), backend:
        raise RuntimeError("boom")
    assert not backend.loaded


def test_bad_input_shape_is_a_permanent_error(bc_model: ModelSpec) -> None:
    with OnnxRuntimeBackend(bc_model) as b, pytest.raises(EngineError, match="Expected: 30") as err:
        b.predict({"input": np.zeros((2, 29), np.float32)})
    assert err.value.permanent


def test_use_before_load(bc_model: ModelSpec) -> None:
    backend = OnnxRuntimeBackend(bc_model)
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


def test_unsupported_device(bc_model: ModelSpec) -> None:
    with pytest.raises(BackendUnavailable, match="device 'cuda' is not supported"):
        OnnxRuntimeBackend(bc_model, device="cuda").load()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"threads": 2}, "unknown onnxruntime backend options: threads"),
        ({"intra_op_num_threads": -1}, "non-negative integer"),
        ({"graph_optimization_level": "max"}, "graph_optimization_level must be one of"),
    ],
)
def test_option_validation(bc_model: ModelSpec, options: dict, message: str) -> None:
    with pytest.raises(EngineError, match=message):
        OnnxRuntimeBackend(bc_model, options=options).load()
