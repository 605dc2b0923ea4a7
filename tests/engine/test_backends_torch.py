"""The torch backend: TorchScript on the CPU, checkpoints refused without unpickling, CUDA where present.

torch.export programs, which the backend runs too: test_torch_export.py.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from workers.engine.errors import BackendUnavailable, EngineError, InvalidArtifact
from workers.engine.formats.torchscript import CHECKPOINT_MESSAGE
from workers.engine.inference._common import cuda_devices
from workers.engine.inference.pytorch import TorchBackend
from workers.engine.types import ModelSpec, TensorSpec

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


class TwoHeads(torch.nn.Module):
    def forward(self, pixels: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return pixels * scale, pixels.sum(dim=1)


class Named(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"double": x * 2, "negated": -x}


@pytest.fixture(scope="module")
def digits_pt() -> ModelSpec:
    return ModelSpec(str(FIXTURES / "digits_cnn.pt"), "torchscript", "")


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.load(FIXTURES / "digits_test.npz")["input"][:16]


@pytest.fixture
def no_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything calls torch.load or Python's pickle loaders."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a pickle was loaded")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)


def _save_script(module: torch.nn.Module, path: Path) -> ModelSpec:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "torch.jit.script is deprecated"
        torch.jit.script(module).save(str(path))
    return ModelSpec(str(path), "torchscript", "")


def test_probe() -> None:
    info = TorchBackend.probe()
    assert info["version"] == torch.__version__
    assert info["devices"][0] == "cpu" and info["precisions"][0] == "fp32"
    assert info["formats"] == ["torchscript", "torch_export"]


def test_supports_torchscript_and_torch_export() -> None:
    assert TorchBackend.supports(ModelSpec("m.pt", "torchscript", ""))
    # Loaded without torch.export.load, which unpickles (see workers/engine/formats/torch_export/).
    assert TorchBackend.supports(ModelSpec("m.pt2", "torch_export", ""))
    assert not TorchBackend.supports(ModelSpec("m.onnx", "onnx", ""))
    with pytest.raises(EngineError, match="cannot run 'onnx' models; it loads: torchscript, torch_export"):
        TorchBackend(ModelSpec("m.onnx", "onnx", ""))


def test_predict_and_describe(digits_pt: ModelSpec, images: np.ndarray, no_unpickling: None) -> None:
    with TorchBackend(digits_pt, options={"output_names": ["logits"]}) as b:
        assert b.input_specs == (TensorSpec("input", "float32", None),)
        assert b.output_specs == (TensorSpec("logits", "float32", None),)
        out = b.predict({"input": images})
        assert list(out) == ["logits"] and out["logits"].shape == (16, 10) and out["logits"].dtype == np.float32
        assert b.describe() == {
            "backend": "torch",
            "version": torch.__version__,
            "provider": "torch.jit",
            "device": "cpu",
            "precision": "fp32",
        }
    assert not b.loaded


def test_default_output_name_and_readonly_inputs(digits_pt: ModelSpec, images: np.ndarray) -> None:
    readonly = images.copy()
    readonly.flags.writeable = False
    with TorchBackend(digits_pt) as b:
        reference = b.predict({"input": images})["output"]
        np.testing.assert_array_equal(b.predict({"input": readonly})["output"], reference)
    np.testing.assert_array_equal(readonly, images)


def test_tuple_and_dict_outputs(tmp_path: Path) -> None:
    two = _save_script(TwoHeads(), tmp_path / "two.pt")
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    with TorchBackend(two) as b:
        assert [s.name for s in b.input_specs] == ["pixels", "scale"]
        assert [s.name for s in b.output_specs] == ["output_0", "output_1"]
        out = b.predict({"scale": np.float32([2.0]), "pixels": x})
        np.testing.assert_array_equal(out["output_0"], x * 2)
        np.testing.assert_array_equal(out["output_1"], x.sum(axis=1))
        with pytest.raises(EngineError, match="the model takes inputs pixels, scale; got pixels"):
            b.predict({"pixels": x})
        with pytest.raises(EngineError, match="unknown inputs extra"):
            b.predict({"pixels": x, "scale": np.float32([1.0]), "extra": x})
    with TorchBackend(two, options={"output_names": ["scaled", "row_sum"]}) as b:
        assert list(b.predict({"pixels": x, "scale": np.float32([1.0])})) == ["scaled", "row_sum"]
    named = _save_script(Named(), tmp_path / "named.pt")
    with TorchBackend(named) as b:
        assert b.output_specs == ()  # a dict's keys are known only once it has run
        out = b.predict({"x": x})
        assert sorted(out) == ["double", "negated"]
        np.testing.assert_array_equal(out["negated"], -x)


def test_pickled_checkpoint_is_refused_without_unpickling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "weights.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), path)
    legacy = tmp_path / "legacy.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), legacy, _use_new_zipfile_serialization=False)
    calls: list[str] = []
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: calls.append("jit.load"))
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append("torch.load"))
    for checkpoint in (path, legacy):
        with pytest.raises(InvalidArtifact) as err:
            TorchBackend(ModelSpec(str(checkpoint), "torchscript", "")).load()
        assert err.value.message == CHECKPOINT_MESSAGE
    assert calls == []


def test_garbage_and_missing_files(tmp_path: Path) -> None:
    garbage = tmp_path / "secret-dir" / "m.pt"
    garbage.parent.mkdir()
    garbage.write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(InvalidArtifact, match="truncated or corrupt") as err:
        TorchBackend(ModelSpec(str(garbage), "torchscript", "")).load()
    assert "secret-dir" not in err.value.message
    with pytest.raises(EngineError, match="missing on the worker") as err:
        TorchBackend(ModelSpec(str(tmp_path / "gone.pt"), "torchscript", "")).load()
    assert not err.value.permanent


def test_bad_input_is_a_permanent_error(digits_pt: ModelSpec) -> None:
    with TorchBackend(digits_pt) as b:
        with pytest.raises(EngineError, match="^PyTorch failed to run the model") as err:
            b.predict({"input": np.zeros((2, 3, 8, 8), np.float32)})
        assert err.value.permanent
        with pytest.raises(EngineError, match="the model takes inputs input; got x"):
            b.predict({"x": np.zeros((2, 1, 8, 8), np.float32)})


def test_cpu_only_precisions_and_devices(digits_pt: ModelSpec) -> None:
    with pytest.raises(EngineError, match="precision 'fp16' is not available here; choose one of fp32"):
        TorchBackend(digits_pt, options={"precision": "fp16"}).load()
    with pytest.raises(BackendUnavailable, match="device 'gpu' is not supported; it runs on: cpu, cuda"):
        TorchBackend(digits_pt, device="gpu").load()
    with pytest.raises(EngineError, match="threads must be an integer >= 1"):
        TorchBackend(digits_pt, options={"threads": 0}).load()
    with pytest.raises(EngineError, match="output_names must be a list of non-empty strings"):
        TorchBackend(digits_pt, options={"output_names": "logits"}).load()


def test_cuda_unavailable_says_why(digits_pt: ModelSpec) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the GPU test covers it")
    with pytest.raises(BackendUnavailable) as err:
        TorchBackend(digits_pt, device="cuda").load()
    assert err.value.reason in (f"this torch {torch.__version__} is a CPU-only build", "no CUDA device")


@pytest.mark.gpu
def test_cuda_matches_cpu(digits_pt: ModelSpec, images: np.ndarray) -> None:
    if not torch.cuda.is_available():
        pytest.skip(f"no CUDA device for torch {torch.__version__}: {cuda_devices()[1] or 'CPU-only build'}")
    with TorchBackend(digits_pt) as cpu:
        reference = cpu.predict({"input": images})["output"]
    with TorchBackend(digits_pt, device="cuda") as gpu:
        np.testing.assert_allclose(gpu.predict({"input": images})["output"], reference, atol=1e-4)
    with TorchBackend(digits_pt, device="cuda", options={"precision": "fp16"}) as half:
        out = half.predict({"input": images})["output"]
        assert out.dtype == np.float32 and half.describe()["precision"] == "fp16"
        np.testing.assert_array_equal(out.argmax(1), reference.argmax(1))


def test_runs_in_inference_mode_on_shared_memory(digits_pt: ModelSpec, images: np.ndarray) -> None:
    seen: list[tuple[bool, bool]] = []
    with TorchBackend(digits_pt) as b:
        forward = b._forward

        def spy(tensor: torch.Tensor) -> torch.Tensor:
            # from_numpy: the tensor is the caller's memory, not a copy.
            seen.append((torch.is_inference_mode_enabled(), tensor.data_ptr() == images.ctypes.data))
            return forward(tensor)

        b._forward = spy
        b.predict({"input": images})
    assert seen == [(True, True)]
    assert not torch.is_inference_mode_enabled()
