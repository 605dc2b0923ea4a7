"""Refused at upload what cannot run: unknown operator domains and expansion bombs, with the reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from workers.engine.errors import InvalidArtifact
from workers.engine.formats.onnx import inspect_onnx


def _model(tmp_path: Path, nodes, inits, out_shape, domains=(("", 17),)) -> str:
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
        inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in domains])
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    return str(path)


def test_operator_from_an_unknown_domain_is_refused(tmp_path):
    weights = numpy_helper.from_array(np.ones((4, 2), np.float32), "w")
    node = helper.make_node("MatMul", ["x", "w"], ["y"], domain="com.evil")
    path = _model(tmp_path, [node], [weights], ["a", "b"], domains=(("", 17), ("com.evil", 1)))
    with pytest.raises(InvalidArtifact, match=r"operator com\.evil:MatMul from the unknown domain 'com\.evil'"):
        inspect_onnx(path)


def test_the_same_operator_in_the_standard_domain_is_accepted(tmp_path):
    weights = numpy_helper.from_array(np.ones((4, 2), np.float32), "w")
    path = _model(tmp_path, [helper.make_node("MatMul", ["x", "w"], ["y"])], [weights], [1, 2])
    assert inspect_onnx(path).outputs[0].shape == (1, 2)


@pytest.mark.parametrize("out_shape", [(100000, 100000, 4), ("a", "b", "c"), (100000, 100000, 100000)])
def test_an_expand_bomb_is_refused_and_named(tmp_path, out_shape):
    shape = numpy_helper.from_array(np.array([100000, 100000, 4], np.int64), "s")
    path = _model(tmp_path, [helper.make_node("Expand", ["x", "s"], ["y"])], [shape], out_shape)
    with pytest.raises(InvalidArtifact, match=r"expansion bomb") as refused:
        inspect_onnx(path)
    assert "100000×100000×4" in str(refused.value) and "exhaust memory" in str(refused.value)


def test_a_contradicted_declared_shape_is_explained(tmp_path):
    shape = numpy_helper.from_array(np.array([2, 4], np.int64), "s")
    path = _model(tmp_path, [helper.make_node("Expand", ["x", "s"], ["y"])], [shape], (2, 5))
    with pytest.raises(InvalidArtifact, match=r"declares a tensor shape that its own operators contradict"):
        inspect_onnx(path)


def test_a_modest_expand_is_accepted(tmp_path):
    shape = numpy_helper.from_array(np.array([8, 4], np.int64), "s")
    path = _model(tmp_path, [helper.make_node("Expand", ["x", "s"], ["y"])], [shape], (8, 4))
    assert inspect_onnx(path).outputs[0].shape == (8, 4)
