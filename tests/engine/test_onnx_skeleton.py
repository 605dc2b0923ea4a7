"""ONNX files checked without their weights: same answers as the whole file, damaged weights refused."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from workers.engine.errors import InvalidArtifact
from workers.engine.formats.onnx import inspect_onnx
from workers.engine.formats.onnx_skeleton import SKIP_BYTES, read_skeleton


def _mlp(path, *, hidden: int = 300, raw_weights: bool = True) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(size=(100, hidden)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(size=(hidden, 3)).astype(np.float32), "w2")
    shape = numpy_helper.from_array(np.array([-1, hidden], dtype=np.int64), "shape")
    if not raw_weights:
        w1 = helper.make_tensor("w1", TensorProto.FLOAT, [100, hidden], rng.normal(size=100 * hidden).tolist())
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("Reshape", ["h", "shape"], ["h2"]),
        helper.make_node("Relu", ["h2"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 100])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [w1, w2, shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="tests")
    onnx.save(model, path)
    return model


def test_large_weights_stay_on_disk_and_the_answer_matches_the_whole_file(tmp_path):
    path = tmp_path / "mlp.onnx"
    model = _mlp(path)
    skeleton = read_skeleton(str(path))
    # w1 (120 kB) is left out; w2 and the shape constant are small and kept.
    assert skeleton.skipped == {0: 100 * 300 * 4}
    assert SKIP_BYTES <= 100 * 300 * 4
    assert len(skeleton.data) < path.stat().st_size - 100 * 300 * 4 + 1024

    info = inspect_onnx(str(path))
    # The reference: ONNX's own checker and shape inference on the whole, loaded file.
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    (y,) = inferred.graph.output
    assert [i.name for i in info.inputs] == ["x"]  # weights are not inputs
    assert info.inputs[0].shape == ("batch", 100)
    assert info.outputs[0].name == "y"
    assert info.outputs[0].shape == tuple(d.dim_param or d.dim_value for d in y.type.tensor_type.shape.dim)
    assert info.outputs[0].shape == ("batch", 3)
    assert info.producer_name == "tests" and info.opset == {"ai.onnx": 17}


def test_weights_in_typed_fields_are_read_as_before(tmp_path):
    path = tmp_path / "typed.onnx"
    _mlp(path, raw_weights=False)
    assert read_skeleton(str(path)).skipped == {}
    assert inspect_onnx(str(path)).outputs[0].shape == ("batch", 3)


def test_weights_shorter_than_their_shape_are_refused(tmp_path):
    path = tmp_path / "short.onnx"
    model = _mlp(path)
    tensor = model.graph.initializer[0]
    tensor.raw_data = tensor.raw_data[: len(tensor.raw_data) - 4]
    onnx.save(model, path)
    with pytest.raises(onnx.checker.ValidationError):  # what the checker says of the whole file
        onnx.checker.check_model(onnx.load(path))
    with pytest.raises(
        InvalidArtifact, match=r"initializer 'w1' holds 119,996 bytes .* needs 120,000: the file is damaged"
    ):
        inspect_onnx(str(path))


def test_a_truncated_file_is_still_called_truncated(tmp_path):
    path = tmp_path / "mlp.onnx"
    _mlp(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidArtifact, match="truncated or corrupt"):
        inspect_onnx(str(path))


def test_a_file_of_zeros_is_refused_at_once(tmp_path):
    path = tmp_path / "zeros.onnx"
    with open(path, "wb") as fh:
        fh.truncate(64 * 1024 * 1024)
    with pytest.raises(InvalidArtifact, match="not an ONNX model"):
        inspect_onnx(str(path))
