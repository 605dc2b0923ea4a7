"""inspect_onnx / inspect_model: signatures of good models, clear rejections of bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from workers.engine.errors import InvalidArtifact
from workers.engine.formats import inspect_model
from workers.engine.formats.onnx import inspect_onnx
from workers.engine.types import TensorSpec


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def _save(path: Path, model: onnx.ModelProto) -> str:
    return _write(path, model.SerializeToString())


def _graph_model(nodes, inputs, outputs, initializers=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="test")


def _vi(name: str, elem: int, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


# ------------------------------------------------------------------ good models


def test_fixture_model_signature(fixtures_dir: Path) -> None:
    info = inspect_onnx(str(fixtures_dir / "breast_cancer_logreg.onnx"))
    assert info.format == "onnx"
    assert info.inputs == (TensorSpec("input", "float32", (None, 30)),)
    assert info.outputs == (
        TensorSpec("label", "int64", (None,)),
        TensorSpec("probabilities", "float32", (None, 2)),
    )
    assert info.opset == {"ai.onnx": 17, "ai.onnx.ml": 1}
    assert info.ir_version == 8
    assert info.producer_name == "skl2onnx"
    assert info.producer_version
    assert info.class_labels == (0, 1)
    assert info.to_dict()["inputs"][0]["shape"] == (None, 30)


def test_regression_fixture_has_no_class_labels(fixtures_dir: Path) -> None:
    info = inspect_model(str(fixtures_dir / "diabetes_ridge.onnx"), "onnx")
    assert info.inputs == (TensorSpec("input", "float32", (None, 10)),)
    assert [o.name for o in info.outputs] == ["variable"]
    assert info.outputs[0].dtype == "float32"
    assert info.class_labels is None


def test_symbolic_dims_and_initializers(tmp_path: Path) -> None:
    weight = helper.make_tensor("w", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])
    model = _graph_model(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        # Old exporters list initializers among the graph inputs too.
        [_vi("x", TensorProto.FLOAT, ["batch", 3]), _vi("w", TensorProto.FLOAT, [3])],
        [_vi("y", TensorProto.FLOAT, ["batch", 3])],
        [weight],
    )
    info = inspect_onnx(_save(tmp_path / "m.onnx", model))
    assert info.inputs == (TensorSpec("x", "float32", ("batch", 3)),)
    assert info.outputs == (TensorSpec("y", "float32", ("batch", 3)),)


@pytest.mark.parametrize(
    ("make", "kwargs", "expected"),
    [
        (lambda: LogisticRegression(max_iter=500), {}, (0, 1, 2)),
        (lambda: RandomForestClassifier(n_estimators=3, max_depth=2, random_state=0), {}, (0, 1, 2)),
        (lambda: LogisticRegression(max_iter=500), {"names": True}, ("setosa", "versicolor", "virginica")),
    ],
    ids=["logreg-int", "forest-int64s", "logreg-strings"],
)
def test_class_labels_from_skl2onnx_classifiers(tmp_path: Path, make, kwargs, expected) -> None:
    data = load_iris()
    y = np.array(data.target_names)[data.target] if kwargs.get("names") else data.target
    est = make().fit(data.data, y)
    model = convert_sklearn(est, initial_types=[("input", FloatTensorType([None, 4]))], target_opset=17)
    info = inspect_onnx(_save(tmp_path / "c.onnx", model))
    assert info.class_labels == expected
    # The default ZipMap output is a sequence of maps, not a tensor.
    assert info.outputs[1].dtype.startswith("seq(map(")
    assert info.outputs[1].shape is None


def test_unsupported_format(tmp_path: Path) -> None:
    with pytest.raises(InvalidArtifact, match="unsupported model format 'pt'"):
        inspect_model(_write(tmp_path / "m.pt", b"x"), "pt")


# ------------------------------------------------------------------- bad files


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidArtifact, match="^the file is empty$"):
        inspect_onnx(_write(tmp_path / "e.onnx", b""))


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        (b"mean_radius,mean_texture,diagnosis\n17.99,10.38,0\n20.57,17.77,0\n", "text"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10", "PNG"),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00", "ZIP"),
    ],
    ids=["csv", "png", "zip"],
)
def test_other_file_types(tmp_path: Path, data: bytes, hint: str) -> None:
    with pytest.raises(InvalidArtifact, match="^not an ONNX model: ") as err:
        inspect_onnx(_write(tmp_path / "x.onnx", data))
    assert hint in err.value.message
    assert err.value.permanent


@pytest.mark.parametrize("seed", range(8))
def test_random_bytes(tmp_path: Path, seed: int) -> None:
    data = np.random.default_rng(seed).integers(0, 256, size=4096, dtype=np.uint8).tobytes()
    with pytest.raises(InvalidArtifact):
        inspect_onnx(_write(tmp_path / "r.onnx", data))


def test_truncated_in_half(tmp_path: Path, fixtures_dir: Path) -> None:
    data = (fixtures_dir / "breast_cancer_logreg.onnx").read_bytes()
    with pytest.raises(InvalidArtifact, match="truncated or corrupt"):
        inspect_onnx(_write(tmp_path / "t.onnx", data[: len(data) // 2]))


def test_every_truncation_is_rejected(tmp_path: Path, fixtures_dir: Path) -> None:
    # Protobuf happily decodes a prefix that ends on a field boundary; each of
    # those must still fail a later check (no graph, no opset, no outputs...).
    data = (fixtures_dir / "breast_cancer_logreg.onnx").read_bytes()
    path = tmp_path / "t.onnx"
    accepted = []
    for cut in range(len(data)):
        path.write_bytes(data[:cut])
        try:
            inspect_onnx(str(path))
        except InvalidArtifact:
            continue
        accepted.append(cut)
    assert accepted == []


def test_no_graph(tmp_path: Path) -> None:
    model = onnx.ModelProto(ir_version=8)
    with pytest.raises(InvalidArtifact, match="has no graph"):
        inspect_onnx(_save(tmp_path / "g.onnx", model))


def test_no_nodes(tmp_path: Path) -> None:
    x = _vi("x", TensorProto.FLOAT, ["N", 3])
    with pytest.raises(InvalidArtifact, match="no nodes"):
        inspect_onnx(_save(tmp_path / "n.onnx", _graph_model([], [x], [x])))


def test_no_inputs(tmp_path: Path) -> None:
    const = helper.make_node("Constant", [], ["y"], value=helper.make_tensor("c", TensorProto.FLOAT, [1], [1.0]))
    model = _graph_model([const], [], [_vi("y", TensorProto.FLOAT, [1])])
    with pytest.raises(InvalidArtifact, match="no inputs"):
        inspect_onnx(_save(tmp_path / "i.onnx", model))


def test_only_initializer_inputs(tmp_path: Path) -> None:
    w = helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])
    model = _graph_model(
        [helper.make_node("Relu", ["w"], ["y"])],
        [_vi("w", TensorProto.FLOAT, [1])],
        [_vi("y", TensorProto.FLOAT, [1])],
        [w],
    )
    with pytest.raises(InvalidArtifact, match="every graph input is a constant initializer"):
        inspect_onnx(_save(tmp_path / "w.onnx", model))


def test_checker_failure(tmp_path: Path) -> None:
    model = _graph_model(
        [helper.make_node("NoSuchOp", ["x"], ["y"])],
        [_vi("x", TensorProto.FLOAT, ["N", 3])],
        [_vi("y", TensorProto.FLOAT, ["N", 3])],
    )
    with pytest.raises(InvalidArtifact, match="^ONNX checker rejected the model: No Op registered for NoSuchOp") as err:
        inspect_onnx(_save(tmp_path / "c.onnx", model))
    assert "\n" not in err.value.message


def test_shape_inference_failure(tmp_path: Path) -> None:
    model = _graph_model(
        [helper.make_node("Add", ["a", "b"], ["y"])],
        [_vi("a", TensorProto.FLOAT, [2, 3]), _vi("b", TensorProto.FLOAT, [4, 5])],
        [_vi("y", TensorProto.FLOAT, [2, 3])],
    )
    with pytest.raises(InvalidArtifact, match="^ONNX shape inference failed: .*Incompatible dimensions"):
        inspect_onnx(_save(tmp_path / "s.onnx", model))


def test_external_data_is_refused(tmp_path: Path) -> None:
    # Only raw_data tensors move to external files.
    raw = np.array([1.0, 2.0, 3.0], dtype=np.float32).tobytes()
    weight = helper.make_tensor("w", TensorProto.FLOAT, [3], raw, raw=True)
    model = _graph_model(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        [_vi("x", TensorProto.FLOAT, ["N", 3])],
        [_vi("y", TensorProto.FLOAT, ["N", 3])],
        [weight],
    )
    onnx.save_model(model, str(tmp_path / "ext.onnx"), save_as_external_data=True, size_threshold=0, location="w.bin")
    with pytest.raises(InvalidArtifact, match="external data"):
        inspect_onnx(str(tmp_path / "ext.onnx"))
