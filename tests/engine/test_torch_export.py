"""torch.export programs (.pt2): loaded without unpickling or evaluating anything from the file.

The crafted archives below carry a payload that creates a marker folder when
unpickled or evaluated. ``torch.export.load`` runs every one of them (the
``*_runs_in_torch_export_load`` tests show it, so the payloads are live);
evalsvc's loader must refuse them, or load them without running the payload,
and the marker must never appear.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import pickle
import threading
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from workers.engine.errors import EngineError, InvalidArtifact
from workers.engine.formats import inspect_model
from workers.engine.formats.torch_export import UNPICKLING_REFUSED, refuse_unrestricted_unpickling
from workers.engine.inference.pytorch import TorchBackend
from workers.engine.types import ModelSpec

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
PT2 = FIXTURES / "digits_cnn.pt2"
TOP = "digits_cnn/"  # torch names the archive's top folder after the file


class MakesMarker:
    """Unpickling this creates ``marker``: a stand-in for arbitrary code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.makedirs, (str(self.marker),))


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "payload-ran"


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.load(FIXTURES / "digits_test.npz")["input"]


@pytest.fixture
def no_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything calls torch.load or Python's pickle loaders."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a pickle was loaded")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)


def _torch_save(value: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def _craft(
    path: Path,
    *,
    replace: dict[str, bytes | None] | None = None,
    program: Callable[[dict[str, Any]], None] | None = None,
    weights: Callable[[dict[str, Any]], None] | None = None,
    constants: Callable[[dict[str, Any]], None] | None = None,
) -> str:
    """Copy the digits program, editing entries (None removes one) and the JSON documents in place."""
    edits: dict[str, Callable[[dict[str, Any]], None] | None] = {
        "models/model.json": program,
        "data/weights/model_weights_config.json": weights,
        "data/constants/model_constants_config.json": constants,
    }
    replace = dict(replace or {})
    with zipfile.ZipFile(PT2) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            name = info.filename.split("/", 1)[1]
            data: bytes | None = src.read(info)
            if edits.get(name) is not None:
                document = json.loads(data)
                edits[name](document)  # type: ignore[misc]
                data = json.dumps(document).encode()
            data = replace.pop(name, data)
            if data is not None:
                dst.writestr(TOP + name, data)
        for name, data in replace.items():
            if data is not None:
                dst.writestr(TOP + name, data)
    return str(path)


def _nodes(document: dict[str, Any]) -> list[dict[str, Any]]:
    return document["graph_module"]["graph"]["nodes"]


def _call(document: dict[str, Any]) -> dict[str, Any]:
    return document["graph_module"]["module_call_graph"][0]["signature"]


def _inject_expr(payload: str) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        sizes = document["graph_module"]["graph"]["tensor_values"]["input"]["sizes"]
        sizes[0]["as_expr"]["expr_str"] = payload

    return edit


# ---------------------------------------------------------------- the fixture


def test_inspect_reads_the_signature(no_unpickling: None) -> None:
    info = inspect_model(str(PT2), "torch_export")
    assert info.format == "torch_export" and info.signature_known
    (inp,), (out,) = info.inputs, info.outputs
    batch = inp.shape[0]
    assert isinstance(batch, str) and batch.startswith("s")  # the dynamic batch, as its symbol
    assert (inp.name, inp.dtype, inp.shape[1:]) == ("input", "float32", (1, 8, 8))
    assert (out.name, out.dtype, out.shape) == ("output", "float32", (batch, 10))
    versions = json.loads((FIXTURES / "MODELS.json").read_text(encoding="utf-8"))["versions"]
    assert info.producer_name == "torch.export" and info.producer_version == versions["torch"]
    assert set(info.opset) == {"aten"}
    assert info.notes[0] == f"forward(input: float32[{batch}, 1, 8, 8]) -> output: float32[{batch}, 10]"


def test_matches_onnx_runtime_on_the_test_images(images: np.ndarray, no_unpickling: None) -> None:
    import onnxruntime as ort

    session = ort.InferenceSession(str(FIXTURES / "digits_cnn.onnx"), providers=["CPUExecutionProvider"])
    expected = session.run(["logits"], {"input": images})[0]
    with TorchBackend(ModelSpec(str(PT2), "torch_export", "")) as backend:
        logits = backend.predict({"input": images})["output"]
    assert logits.shape == (len(images), 10) and logits.dtype == np.float32
    # Logits reach ~30: 1e-5 relative, and 1e-5 absolute near zero (TorchScript differs from ORT as much).
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(logits.argmax(1), expected.argmax(1))


def test_rebuild_is_byte_for_byte(tmp_path: Path) -> None:
    """build_models.py's export of the same weights writes the committed bytes again."""
    versions = json.loads((FIXTURES / "MODELS.json").read_text(encoding="utf-8"))["versions"]
    if versions["torch"] != torch.__version__:
        pytest.skip(f"torch {torch.__version__} differs from the fixture's {versions['torch']}")
    spec = importlib.util.spec_from_file_location("build_models", ROOT / "scripts" / "build_models.py")
    assert spec is not None and spec.loader is not None
    build_models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_models)
    model = build_models.DigitsCNN()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "torch.jit.load is deprecated"
        # The weights of the same training run, from the TorchScript fixture (no retraining here).
        model.load_state_dict(torch.jit.load(str(FIXTURES / "digits_cnn.pt")).state_dict())
    rebuilt = tmp_path / "digits_cnn.pt2"  # the same name: torch names the top folder after it
    build_models.export_torch_program(model.eval(), rebuilt, torch.zeros(2, 1, 8, 8))
    assert rebuilt.read_bytes() == PT2.read_bytes()


def test_fixture_holds_no_pickle_and_no_local_paths() -> None:
    with zipfile.ZipFile(PT2) as archive:
        names = {n.split("/", 1)[1] for n in archive.namelist()}
        assert archive.read(TOP + "data/sample_inputs/model.pt") == b""
        assert not any(n.endswith((".pkl", ".pt")) for n in names - {"data/sample_inputs/model.pt"})
        text = archive.read(TOP + "models/model.json").decode()
    assert "stack_trace" not in text and "/home/" not in text and "site-packages" not in text


# ------------------------------------------------------------------ the backend


def test_backend_runs_the_program(images: np.ndarray, no_unpickling: None) -> None:
    spec = ModelSpec(str(PT2), "torch_export", "")
    assert TorchBackend.supports(spec)
    with TorchBackend(spec, options={"output_names": ["logits"]}) as b:
        assert [(s.name, s.dtype, s.shape[1:]) for s in b.input_specs] == [("input", "float32", (1, 8, 8))]
        assert [(s.name, s.dtype, s.shape[1:]) for s in b.output_specs] == [("logits", "float32", (10,))]
        out = b.predict({"input": images[:16]})
        assert list(out) == ["logits"] and out["logits"].shape == (16, 10)
        assert b.describe() == {
            "backend": "torch",
            "version": torch.__version__,
            "provider": "torch.export",
            "device": "cpu",
            "precision": "fp32",
        }
        # A read-only array is accepted and gives what the same batch gives writable. (Compared at the
        # same batch size: oneDNN may pick another kernel for another batch size, so batch 5 and the
        # first 5 rows of batch 16 can differ in the last float bits.)
        readonly = images[:5].copy()
        readonly.flags.writeable = False
        np.testing.assert_array_equal(
            b.predict({"input": readonly})["logits"], b.predict({"input": images[:5].copy()})["logits"]
        )
        np.testing.assert_allclose(b.predict({"input": readonly})["logits"], out["logits"][:5], rtol=1e-5, atol=1e-5)
        with pytest.raises(EngineError, match="^PyTorch failed to run the model: Expected input") as err:
            b.predict({"input": np.zeros((2, 3, 8, 8), np.float32)})
        assert err.value.permanent
        with pytest.raises(EngineError, match="the model takes inputs input; got x"):
            b.predict({"x": images[:2]})
    assert not b.loaded
    with pytest.raises(EngineError, match="precision 'fp16' is not available here; choose one of fp32"):
        TorchBackend(spec, options={"precision": "fp16"}).load()
    with pytest.raises(EngineError, match="output_names has 2 names; the model returns 1 outputs"):
        TorchBackend(spec, options={"output_names": ["a", "b"]}).load()


def test_backend_matches_torchscript_and_runs_in_inference_mode(images: np.ndarray) -> None:
    with TorchBackend(ModelSpec(str(FIXTURES / "digits_cnn.pt"), "torchscript", "")) as ts:
        reference = ts.predict({"input": images})["output"]
    seen: list[bool] = []
    with TorchBackend(ModelSpec(str(PT2), "torch_export", "")) as b:
        forward = b._forward

        def spy(tensor: torch.Tensor) -> torch.Tensor:
            seen.append(torch.is_inference_mode_enabled() and tensor.data_ptr() == images.ctypes.data)
            return forward(tensor)

        b._forward = spy
        np.testing.assert_allclose(b.predict({"input": images})["output"], reference, rtol=1e-6, atol=1e-6)
    assert seen == [True]


class TwoHeads(torch.nn.Module):
    def forward(self, pixels: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return pixels * scale, pixels.sum(dim=1)


class Named(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("offset", torch.tensor([1.0, 2.0, 3.0]))

    def forward(self, x: torch.Tensor, *, bias: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"shifted": x + self.offset + bias, "negated": -x}


def _export(module: torch.nn.Module, path: Path, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> str:
    torch.export.save(torch.export.export(module, args, kwargs), str(path))
    return str(path)


def test_tuple_dict_and_keyword_outputs_are_named_as_for_torchscript(tmp_path: Path) -> None:
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    two = _export(TwoHeads(), tmp_path / "two.pt2", (torch.zeros(2, 3), torch.ones(1)))
    with TorchBackend(ModelSpec(two, "torch_export", "")) as b:
        assert [s.name for s in b.input_specs] == ["pixels", "scale"]
        assert [s.name for s in b.output_specs] == ["output_0", "output_1"]
        out = b.predict({"scale": np.float32([2.0]), "pixels": x})
        np.testing.assert_array_equal(out["output_0"], x * 2)
        np.testing.assert_array_equal(out["output_1"], x.sum(axis=1))
    named = _export(Named(), tmp_path / "named.pt2", (torch.zeros(2, 3),), {"bias": torch.zeros(3)})
    info = inspect_model(named, "torch_export")
    assert [s.name for s in info.inputs] == ["x", "bias"] and [s.name for s in info.outputs] == ["shifted", "negated"]
    with TorchBackend(ModelSpec(named, "torch_export", "")) as b:
        out = b.predict({"x": x, "bias": np.float32([0.5, 0.5, 0.5])})
        assert list(out) == ["shifted", "negated"]
        np.testing.assert_array_equal(out["shifted"], x + np.float32([1.5, 2.5, 3.5]))


def _on_device(kind: str) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        for meta in document["graph_module"]["graph"]["tensor_values"].values():
            meta["device"] = {"type": kind, "index": 0}

    return edit


def test_a_program_exported_on_a_gpu_runs_on_the_cpu(tmp_path: Path, images: np.ndarray) -> None:
    # Its graph names cuda:0; moved to the CPU as torch.export.passes.move_to_device_pass would
    # (which itself aborts the process on a CPU-only build of torch 2.13 for such a program).
    path = _craft(tmp_path / "gpu.pt2", program=_on_device("cuda"))
    with TorchBackend(ModelSpec(path, "torch_export", "")) as b:
        assert b.predict({"input": images[:3]})["output"].shape == (3, 10)


@pytest.mark.gpu
def test_cuda_matches_cpu(images: np.ndarray) -> None:
    if not torch.cuda.is_available():
        pytest.skip(f"no CUDA device for torch {torch.__version__}")
    spec = ModelSpec(str(PT2), "torch_export", "")
    with TorchBackend(spec) as cpu:
        reference = cpu.predict({"input": images})["output"]
    with TorchBackend(spec, device="cuda") as gpu:
        out = gpu.predict({"input": images})["output"]
        assert gpu.describe()["device"] == "cuda"
    np.testing.assert_allclose(out, reference, atol=1e-4)
    np.testing.assert_array_equal(out.argmax(1), reference.argmax(1))


# --------------------------------------------------------- crafted archives


def _sample_inputs(marker: Path) -> dict[str, Any]:
    return {"replace": {"data/sample_inputs/model.pt": _torch_save(((MakesMarker(marker),), {}))}}


def _opaque_constant(marker: Path) -> dict[str, Any]:
    def config(document: dict[str, Any]) -> None:
        document["config"]["payload"] = {
            "path_name": "opaque_obj_0",
            "is_param": False,
            "use_pickle": True,
            "tensor_meta": None,
        }

    return {"replace": {"data/constants/opaque_obj_0": pickle.dumps(MakesMarker(marker))}, "constants": config}


def _pickled_weight(marker: Path) -> dict[str, Any]:
    def config(document: dict[str, Any]) -> None:
        document["config"]["fc.bias"].update(path_name="weight_9", use_pickle=True)

    return {"replace": {"data/weights/weight_9": _torch_save(MakesMarker(marker))}, "weights": config}


def _symbolic_shape(marker: Path) -> dict[str, Any]:
    payload = f"__import__('os').makedirs({str(marker)!r}) or Symbol('s31', positive=True, integer=True)"
    return {"program": _inject_expr(payload)}


LIVE_PAYLOADS = {
    "sample-inputs": _sample_inputs,
    "opaque-constant": _opaque_constant,
    "pickled-weight": _pickled_weight,
    "symbolic-shape": _symbolic_shape,
}


@pytest.mark.parametrize("craft", LIVE_PAYLOADS.values(), ids=LIVE_PAYLOADS.keys())
def test_payloads_run_in_torch_export_load(tmp_path: Path, marker: Path, craft: Callable[..., Any]) -> None:
    """The control: torch.export.load itself runs each payload (why evalsvc never calls it)."""
    path = _craft(tmp_path / "crafted.pt2", **craft(marker))
    with contextlib.suppress(Exception):
        torch.export.load(path)
    assert marker.exists()


@pytest.mark.parametrize("craft", LIVE_PAYLOADS.values(), ids=LIVE_PAYLOADS.keys())
def test_payloads_are_refused_unrun(
    tmp_path: Path, marker: Path, craft: Callable[..., Any], no_unpickling: None
) -> None:
    path = _craft(tmp_path / "crafted.pt2", **craft(marker))
    with pytest.raises(InvalidArtifact) as err:
        inspect_model(path, "torch_export")
    if craft is _symbolic_shape:
        assert "not a plain sympy expression" in err.value.message
    else:
        assert UNPICKLING_REFUSED in err.value.message
    with pytest.raises(InvalidArtifact):
        TorchBackend(ModelSpec(path, "torch_export", "")).load()
    assert not marker.exists()


def test_guard_code_is_never_executed(tmp_path: Path, marker: Path, images: np.ndarray) -> None:
    """guards_code is Python source that ExportedProgram.module() execs: evalsvc drops it."""

    def guard(document: dict[str, Any]) -> None:
        document["guards_code"] = [f"__import__('os').makedirs({str(marker)!r}) is None"]

    # Real sample inputs (tensors only), which torch needs to build its guard function.
    sample = _torch_save(((torch.zeros(2, 1, 8, 8),), {}))
    path = _craft(tmp_path / "guarded.pt2", program=guard, replace={"data/sample_inputs/model.pt": sample})
    info = inspect_model(path, "torch_export")
    assert any("1 input guard(s)" in note for note in info.notes)
    with TorchBackend(ModelSpec(path, "torch_export", "")) as b:
        assert b.predict({"input": images[:4]})["output"].shape == (4, 10)
    assert not marker.exists()
    torch.export.load(path).module()(torch.zeros(3, 1, 8, 8))  # the control
    assert marker.exists()


def _set_target(target: str) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        _nodes(document)[1]["target"] = target

    return edit


def _set_arg_names(document: dict[str, Any]) -> None:
    _call(document)["forward_arg_names"] = ["input=__import__('os').getcwd()"]


def _set_kwarg_key(document: dict[str, Any]) -> None:
    spec = json.loads(_call(document)["in_spec"])
    spec[1]["children_spec"][1].update(
        context=json.dumps(["x': 0}) or print('injected') #"]),
        children_spec=[{"type": None, "context": None, "children_spec": []}],
    )
    _call(document)["in_spec"] = json.dumps(spec)


def _set_node_name(document: dict[str, Any]) -> None:
    document["graph_module"]["graph"]["inputs"][-1]["as_tensor"]["name"] = "input); import os; (x"


def _set_subgraph(document: dict[str, Any]) -> None:
    _nodes(document)[1]["inputs"].append({"name": "body", "arg": {"as_graph": {"name": "g", "graph": {}}}, "kind": 1})


REFUSED = {
    "builtin-call": ({"program": _set_target("torch.os.system")}, "aten and prims operators only"),
    "eval-call": ({"program": _set_target("builtins.eval")}, "aten and prims operators only"),
    "from-file": ({"program": _set_target("torch.ops.aten.from_file.default")}, "side effects"),
    "arg-name": ({"program": _set_arg_names}, "not a plain Python identifier"),
    "kwarg-key": ({"program": _set_kwarg_key}, "not a plain Python identifier"),
    "node-name": ({"program": _set_node_name}, "not a plain Python identifier"),
    "subgraph": ({"program": _set_subgraph}, "higher-order operator"),
    "pow-bomb": ({"program": _inject_expr("Pow(Integer(10), Integer(10000000000000))")}, "plain sympy expression"),
    "attribute": ({"program": _inject_expr("Symbol('s31').__class__")}, "plain sympy expression"),
    "aotinductor": ({"replace": {"data/aotinductor/model/model.so": b"\x7fELF"}}, "AOTInductor"),
    "torchbind": ({"replace": {"data/constants/custom_obj_0": b"PK"}}, UNPICKLING_REFUSED),
    "legacy-weights": ({"replace": {"data/weights/model.pt": b"\x80\x02"}}, UNPICKLING_REFUSED),
    "unknown-entry": ({"replace": {"code/__torch__.py": b"x"}}, "an entry this service does not load"),
    "no-program": ({"replace": {"models/model.json": None}}, "lacks models/model.json"),
    "other-device": ({"program": _on_device("meta")}, "names the device 'meta'"),
    "weights-out-of-range": (
        {"weights": lambda d: d["config"]["fc.bias"]["tensor_meta"]["sizes"][0].update(as_int=11)},
        "reaches past the end of its data",
    ),
}


@pytest.mark.parametrize(("craft", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_archives_that_could_run_code_are_refused(
    tmp_path: Path, craft: dict[str, Any], message: str, no_unpickling: None
) -> None:
    path = _craft(tmp_path / "crafted.pt2", **craft)
    with pytest.raises(InvalidArtifact) as err:
        inspect_model(path, "torch_export")
    assert message in err.value.message


def test_other_files_are_named_for_what_they_are(tmp_path: Path) -> None:
    with pytest.raises(InvalidArtifact, match="^the file is empty$"):
        inspect_model(_write(tmp_path / "e.pt2", b""), "torch_export")
    with pytest.raises(InvalidArtifact, match="^not a torch.export program: it is not a ZIP archive"):
        inspect_model(str(FIXTURES / "digits_cnn.onnx"), "torch_export")
    with pytest.raises(InvalidArtifact, match="^this is a TorchScript archive or a pickled checkpoint"):
        inspect_model(str(FIXTURES / "digits_cnn.pt"), "torch_export")
    data = PT2.read_bytes()
    with pytest.raises(InvalidArtifact, match="truncated or corrupt"):
        inspect_model(_write(tmp_path / "half.pt2", data[: len(data) // 2]), "torch_export")
    old = tmp_path / "old.pt2"
    with zipfile.ZipFile(old, "w") as archive:
        archive.writestr("version", "8.0")
        archive.writestr("serialized_exported_program.json", "{}")
        archive.writestr("serialized_state_dict.pt", b"\x80\x02")
    with pytest.raises(InvalidArtifact, match="PyTorch 2.7 and older") as err:
        inspect_model(str(old), "torch_export")
    assert UNPICKLING_REFUSED in err.value.message


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


# ------------------------------------------------------------------ the guard


def test_guard_refuses_unrestricted_unpickling_on_its_thread(marker: Path) -> None:
    original_loads, original_load = pickle.loads, torch.load
    with pytest.raises(InvalidArtifact, match=UNPICKLING_REFUSED), refuse_unrestricted_unpickling():
        pickle.loads(pickle.dumps(MakesMarker(marker)))
    with pytest.raises(InvalidArtifact, match=UNPICKLING_REFUSED), refuse_unrestricted_unpickling():
        torch.load(io.BytesIO(_torch_save(MakesMarker(marker))), weights_only=False)
    tensors = _torch_save({"w": torch.arange(3)})
    from_other_thread: list[Any] = []
    with refuse_unrestricted_unpickling():
        # Forced to weights_only=True: tensors load, the object does not.
        assert torch.equal(torch.load(io.BytesIO(tensors))["w"], torch.arange(3))
        with pytest.raises(pickle.UnpicklingError):
            torch.load(io.BytesIO(_torch_save(MakesMarker(marker))))
        # Other threads keep the real functions.
        thread = threading.Thread(target=lambda: from_other_thread.append(pickle.loads(pickle.dumps([1, 2]))))
        thread.start()
        thread.join()
    assert from_other_thread == [[1, 2]]
    assert pickle.loads is original_loads and torch.load is original_load
    assert not marker.exists()


def test_guard_fails_closed_when_torch_swallows_the_refusal(marker: Path) -> None:
    with (
        pytest.raises(InvalidArtifact, match=UNPICKLING_REFUSED),
        refuse_unrestricted_unpickling(),
        contextlib.suppress(Exception),
    ):
        pickle.loads(pickle.dumps(MakesMarker(marker)))
    assert not marker.exists()


def test_a_torch_that_started_unpickling_would_fail_closed(
    tmp_path: Path, marker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should torch's deserializer ever unpickle on this path, the guard turns it into a refusal."""
    from torch._export.serde.serialize import ExportedProgramDeserializer

    deserialize = ExportedProgramDeserializer.deserialize
    payload = pickle.dumps(MakesMarker(marker))

    def unpickling(self: Any, *args: Any, **kwargs: Any) -> Any:
        with contextlib.suppress(Exception):
            pickle.loads(payload)
        return deserialize(self, *args, **kwargs)

    monkeypatch.setattr(ExportedProgramDeserializer, "deserialize", unpickling)
    with pytest.raises(InvalidArtifact, match=UNPICKLING_REFUSED):
        inspect_model(str(PT2), "torch_export")
    assert not marker.exists()
