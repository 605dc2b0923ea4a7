"""Small real models built in the tests: an MLP on scikit-learn's digits as plain ONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pandas as pd
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.neural_network import MLPClassifier


def digits_table() -> pd.DataFrame:
    data = load_digits()
    frame = pd.DataFrame((data.data / 16.0).astype(np.float32), columns=[f"p{i}" for i in range(64)])
    frame["digit"] = data.target
    return frame


def build_digits_mlp(path: Path, *, hidden: int = 32) -> np.ndarray:
    """Write an MLP trained on the digits as a plain MatMul/Add/Relu ONNX graph; return its predictions."""
    frame = digits_table()
    x = frame.drop(columns="digit").to_numpy(np.float32)
    clf = MLPClassifier(hidden_layer_sizes=(hidden,), max_iter=600, random_state=0).fit(x, frame["digit"])
    w1, w2 = (w.astype(np.float32) for w in clf.coefs_)
    b1, b2 = (b.astype(np.float32) for b in clf.intercepts_)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "w1"], ["h"]),
            helper.make_node("Add", ["h", "b1"], ["hb"]),
            helper.make_node("Relu", ["hb"], ["a"]),
            helper.make_node("MatMul", ["a", "w2"], ["o"]),
            helper.make_node("Add", ["o", "b2"], ["logits"]),
        ],
        "digits_mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="evalsvc-tests")
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return clf.predict(x)


def build_matmul_chain(path: Path, *, repeats: int, width: int = 64) -> None:
    """x @ W applied `repeats` times: the same model made slower by adding work."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array((rng.standard_normal((width, width)) / width).astype(np.float32), "w")
    nodes, current = [], "input"
    for i in range(repeats):
        nodes.append(helper.make_node("MatMul", [current, "w"], [f"h{i}"]))
        current = f"h{i}"
    nodes.append(helper.make_node("Identity", [current], ["output"]))
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", width])],
        [weight],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
