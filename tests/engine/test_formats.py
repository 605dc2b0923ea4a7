"""inspect_model for every upload format: the signature of good files, a clear rejection of bad ones."""

from __future__ import annotations

import pickle
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from workers.engine.errors import InvalidArtifact
from workers.engine.formats import MODEL_FORMATS, REFUSED_FORMATS, inspect_model
from workers.engine.formats.torch_export import UNPICKLING_REFUSED
from workers.engine.formats.torchscript import CHECKPOINT_MESSAGE, TORCH_EXPORT_AS_TORCHSCRIPT
from workers.engine.types import TensorSpec

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
XML, BIN = FIXTURES / "digits_cnn.xml", FIXTURES / "digits_cnn.bin"
DIGITS_IN = (TensorSpec("input", "float32", (None, 1, 8, 8)),)
DIGITS_OUT = (TensorSpec("logits", "float32", (None, 10)),)


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


@pytest.fixture
def no_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything calls torch.load or Python's pickle loaders."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a pickle was loaded")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)


def test_formats_listed() -> None:
    assert MODEL_FORMATS == ("onnx", "torchscript", "torch_export", "openvino", "tflite")
    assert REFUSED_FORMATS == ()


def test_weights_file_only_for_openvino(tmp_path: Path) -> None:
    with pytest.raises(InvalidArtifact, match="a separate weights file is only used with OpenVINO IR, not onnx"):
        inspect_model(str(FIXTURES / "digits_cnn.onnx"), "onnx", weights_path=str(BIN))


def test_onnx_digits_signature() -> None:
    info = inspect_model(str(FIXTURES / "digits_cnn.onnx"), "onnx")
    assert info.inputs == (TensorSpec("input", "float32", ("batch", 1, 8, 8)),)
    assert info.outputs == (TensorSpec("logits", "float32", ("batch", 10)),)
    assert info.signature_known and info.producer_name == "pytorch"


# ------------------------------------------------------------------- TorchScript


def test_torchscript_signature_is_unknown_but_described(no_unpickling: None) -> None:
    info = inspect_model(str(FIXTURES / "digits_cnn.pt"), "torchscript")
    assert info.format == "torchscript"
    assert info.inputs == () and info.outputs == ()
    assert info.signature_known is False
    assert "forward(Tensor input) -> Tensor" in info.notes[0]
    assert info.producer_name == "torch.jit" and info.producer_version.startswith("archive v")


@pytest.mark.parametrize("what", ["state_dict", "module", "legacy"])
def test_pickled_checkpoints_are_rejected_unread(tmp_path: Path, what: str, no_unpickling: None) -> None:
    path = tmp_path / "model.pt"
    net = torch.nn.Linear(3, 2)
    if what == "state_dict":
        torch.save(net.state_dict(), path)
    elif what == "module":
        torch.save(net, path)
    else:
        torch.save(net.state_dict(), path, _use_new_zipfile_serialization=False)
    with pytest.raises(InvalidArtifact) as err:
        inspect_model(str(path), "torchscript")
    assert err.value.message == CHECKPOINT_MESSAGE
    assert err.value.permanent


@pytest.fixture
def exported_program(tmp_path: Path) -> Path:
    # The layout torch.export.save writes in torch 2.13, with a bare pickle
    # stream as sample inputs (a real program is in test_torch_export.py).
    path = tmp_path / "model.pt2"
    _zip(
        path,
        {
            "model/archive_format": b"pt2",
            "model/archive_version": b"0",
            "model/models/model.json": b"{}",
            "model/data/weights/model_weights_config.json": b"{}",
            "model/data/constants/model_constants_config.json": b"{}",
            "model/data/weights/weight_0": b"\x00" * 24,
            "model/data/sample_inputs/model.pt": b"\x80\x02",
            "model/byteorder": b"little",
        },
    )
    return path


def test_torch_export_signature(no_unpickling: None) -> None:
    info = inspect_model(str(FIXTURES / "digits_cnn.pt2"), "torch_export")
    batch = info.inputs[0].shape[0]
    assert isinstance(batch, str)
    assert info.inputs == (TensorSpec("input", "float32", (batch, 1, 8, 8)),)
    assert info.outputs == (TensorSpec("output", "float32", (batch, 10)),)
    assert info.signature_known and info.producer_name == "torch.export" and info.producer_version


def test_torch_export_that_needs_unpickling_is_refused_unread(
    exported_program: Path, tmp_path: Path, no_unpickling: None
) -> None:
    with pytest.raises(InvalidArtifact) as err:
        inspect_model(str(exported_program), "torch_export")
    assert err.value.message == f"the program's sample inputs are not a tensor file; {UNPICKLING_REFUSED}"
    with pytest.raises(InvalidArtifact, match="^the file is empty$"):
        inspect_model(_write(tmp_path / "e.pt2", b""), "torch_export")
    # Uploaded under the wrong format, it is named for what it is.
    with pytest.raises(InvalidArtifact) as err:
        inspect_model(str(exported_program), "torchscript")
    assert err.value.message == TORCH_EXPORT_AS_TORCHSCRIPT


def _zip(path: Path, entries: dict[str, bytes]) -> str:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return str(path)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "^the file is empty$"),
        (b"a,b,c\n1,2,3\n", "^not a TorchScript model: the file is text"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "^not a TorchScript model: the file is a PNG image"),
        (b"\x08\x08\x12\x07pytorch\x1a\x052.13", "^not a TorchScript model: the file looks like an ONNX model"),
        (b"\x1c\x00\x00\x00TFL3\x00\x00", "^not a TorchScript model: the file is a TFLite model"),
        (b"PK\x03\x04\x14\x00\x00\x00", "^the TorchScript archive is truncated or corrupt"),
    ],
    ids=["empty", "csv", "png", "onnx", "tflite", "zip-head-only"],
)
def test_torchscript_bad_bytes(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(InvalidArtifact, match=message):
        inspect_model(_write(tmp_path / "m.pt", data), "torchscript")


def test_torchscript_bad_archives(tmp_path: Path) -> None:
    with pytest.raises(InvalidArtifact, match="a ZIP archive without the data.pkl"):
        inspect_model(_zip(tmp_path / "a.pt", {"m/readme.txt": b"hi"}), "torchscript")
    with pytest.raises(InvalidArtifact, match="incomplete: it lacks constants.pkl or the code/ folder"):
        inspect_model(_zip(tmp_path / "b.pt", {"m/data.pkl": b"x", "m/code/__torch__.py": b"x"}), "torchscript")
    data = (FIXTURES / "digits_cnn.pt").read_bytes()
    with pytest.raises(InvalidArtifact, match="truncated or corrupt"):
        inspect_model(_write(tmp_path / "half.pt", data[: len(data) // 2]), "torchscript")


def test_torchscript_that_does_not_compile(tmp_path: Path) -> None:
    broken = tmp_path / "secret" / "broken.pt"
    broken.parent.mkdir()
    with zipfile.ZipFile(FIXTURES / "digits_cnn.pt") as src, zipfile.ZipFile(broken, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith("code/__torch__.py"):
                data = b"def forward(self, input: Tensor) -> Tensor:\n    return (((\n"
            dst.writestr(info, data)
    with pytest.raises(InvalidArtifact, match="^PyTorch cannot load the TorchScript model: ") as err:
        inspect_model(str(broken), "torchscript")
    assert "secret" not in err.value.message and "internal miniz error" not in err.value.message


# -------------------------------------------------------------------- OpenVINO IR


def test_openvino_ir_signature() -> None:
    info = inspect_model(str(XML), "openvino", weights_path=str(BIN))
    assert info.format == "openvino"
    assert info.inputs == DIGITS_IN and info.outputs == DIGITS_OUT
    assert info.ir_version == 11 and info.producer_name == "openvino" and info.producer_version
    assert info.opset["opset"] >= 1


def _ir_copy(tmp_path: Path, xml: bytes | None = None, weights: bytes | None = None) -> tuple[str, str]:
    x, b = tmp_path / "m.xml", tmp_path / "m.bin"
    x.write_bytes(XML.read_bytes() if xml is None else xml)
    b.write_bytes(BIN.read_bytes() if weights is None else weights)
    return str(x), str(b)


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (b"", "^the IR .xml file is empty$"),
        (b"\x00\x01\x02 binary", "^not an OpenVINO IR .xml: the file is not XML$"),
        (b"<?xml version='1.0'?><model><layers/></model>", "root element is <model>, not <net>"),
        (b"<?xml version='1.0'?><net name='x' version='11'></net>", "^the IR .xml has no <layers>$"),
        (b"<?xml version='1.0'?><net name='x' version='7'><layers/></net>", "^IR version 7 is not supported"),
        (b"<?xml version='1.0'?><net name='x' version='11'><layers><layer", "^the IR .xml is truncated or malformed"),
    ],
    ids=["empty", "binary", "other-root", "no-layers", "old-version", "truncated"],
)
def test_openvino_bad_xml(tmp_path: Path, xml: bytes, message: str) -> None:
    path, weights = _ir_copy(tmp_path, xml=xml)
    with pytest.raises(InvalidArtifact, match=message):
        inspect_model(path, "openvino", weights_path=weights)


def test_openvino_weights_missing_short_long_or_foreign(tmp_path: Path) -> None:
    good = BIN.read_bytes()
    path, _ = _ir_copy(tmp_path)
    with pytest.raises(InvalidArtifact, match="needs its .bin weights file"):
        inspect_model(path, "openvino")
    path, weights = _ir_copy(tmp_path, weights=good[:-10])
    with pytest.raises(
        InvalidArtifact, match=f"too short for this .xml: the graph needs {len(good)} bytes, the file has"
    ):
        inspect_model(path, "openvino", weights_path=weights)
    path, weights = _ir_copy(tmp_path, weights=good + b"\x00" * 64)
    with pytest.raises(InvalidArtifact, match="^the .bin weights file does not belong to this .xml"):
        inspect_model(path, "openvino", weights_path=weights)
    # The weights of another model: here the breast-cancer ONNX file's bytes.
    path, weights = _ir_copy(tmp_path, weights=(FIXTURES / "breast_cancer_logreg.onnx").read_bytes())
    with pytest.raises(InvalidArtifact, match="is truncated or belongs to another model"):
        inspect_model(path, "openvino", weights_path=weights)


def test_openvino_rejects_what_it_cannot_read(tmp_path: Path) -> None:
    text = XML.read_text(encoding="utf-8").replace('type="Convolution"', 'type="NoSuchOperation"', 1)
    path, weights = _ir_copy(tmp_path, xml=text.encode())
    with pytest.raises(InvalidArtifact, match="^OpenVINO cannot read the IR: ") as err:
        inspect_model(path, "openvino", weights_path=weights)
    assert str(tmp_path) not in err.value.message


# ------------------------------------------------------------------------- TFLite


def test_tflite_signature() -> None:
    info = inspect_model(str(FIXTURES / "digits_cnn.tflite"), "tflite")
    assert info.format == "tflite"
    assert info.inputs == DIGITS_IN and info.outputs == DIGITS_OUT
    assert info.ir_version == 3 and info.producer_name == "evalsvc build_models.py"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "^the file is empty$"),
        (b"TFL3", "^not a TFLite model: the file is only 4 bytes long$"),
        ((FIXTURES / "digits_cnn.onnx").read_bytes(), "^not a TFLite model: the file looks like an ONNX model$"),
        ((FIXTURES / "digits_cnn.pt").read_bytes(), "^not a TFLite model: the file is a ZIP archive"),
        (b"\x00" * 64, "^not a TFLite model: the file identifier is b'\\\\x00\\\\x00\\\\x00\\\\x00', not b'TFL3'$"),
    ],
    ids=["empty", "tiny", "onnx", "torchscript", "zeros"],
)
def test_tflite_wrong_files(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(InvalidArtifact, match=message):
        inspect_model(_write(tmp_path / "m.tflite", data), "tflite")


def test_tflite_truncated(tmp_path: Path) -> None:
    data = (FIXTURES / "digits_cnn.tflite").read_bytes()
    for cut in (16, len(data) // 2, len(data) - 8):
        with pytest.raises(InvalidArtifact, match="^the TFLite model is truncated or corrupt"):
            inspect_model(_write(tmp_path / "t.tflite", data[:cut]), "tflite")


def test_tflite_with_an_operator_the_runtime_lacks(tmp_path: Path) -> None:
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    tensors = []
    for name in ("x", "y"):
        t = s.TensorT()
        t.name, t.type, t.shape = name, s.TensorType.FLOAT32, np.array([1, 4], dtype=np.int32)
        tensors.append(t)
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0], [1]
    graph = s.SubGraphT()
    graph.tensors, graph.inputs, graph.outputs, graph.operators = tensors, [0], [1], [op]
    code = s.OperatorCodeT(deprecatedBuiltinCode=s.BuiltinOperator.CUSTOM, builtinCode=s.BuiltinOperator.CUSTOM)
    code.customCode = "MadeUpOp"
    model = s.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [code], [graph], [s.BufferT()]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    with pytest.raises(InvalidArtifact, match="^the TFLite runtime cannot prepare the model: .*MadeUpOp"):
        inspect_model(_write(tmp_path / "custom.tflite", bytes(builder.Output())), "tflite")


def test_every_format_rejects_an_empty_file(tmp_path: Path) -> None:
    empty = _write(tmp_path / "empty", b"")
    for fmt in (*MODEL_FORMATS, *REFUSED_FORMATS):
        weights = str(BIN) if fmt == "openvino" else None
        with pytest.raises(InvalidArtifact, match="empty"):
            inspect_model(empty, fmt, weights_path=weights)


def test_copies_keep_their_meaning(tmp_path: Path) -> None:
    # The same bytes under another name inspect the same: nothing depends on the file name.
    for name, fmt in (
        ("digits_cnn.pt", "torchscript"),
        ("digits_cnn.pt2", "torch_export"),
        ("digits_cnn.tflite", "tflite"),
    ):
        copy = tmp_path / "upload.bin"
        shutil.copy(FIXTURES / name, copy)
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            assert inspect_model(str(copy), fmt).format == fmt
