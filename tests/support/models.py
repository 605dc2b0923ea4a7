"""Small real models and tables built in the tests (the digits MLP itself is a fixture: fixtures/digits_mlp.onnx)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits


def digits_table() -> pd.DataFrame:
    data = load_digits()
    frame = pd.DataFrame((data.data / 16.0).astype(np.float32), columns=[f"p{i}" for i in range(64)])
    frame["digit"] = data.target
    return frame


@dataclass(frozen=True)
class DigitsMlp:
    """The committed digits MLP, the data it was trained on and scikit-learn's own predictions."""

    path: Path
    x: np.ndarray  # (1797, 64) float32, pixels / 16
    y: np.ndarray  # the true digits
    predicted: np.ndarray  # what the scikit-learn MLP predicted for x


def load_digits_mlp(fixtures: Path) -> DigitsMlp:
    table = digits_table()
    return DigitsMlp(
        path=fixtures / "digits_mlp.onnx",
        x=table.drop(columns="digit").to_numpy(np.float32),
        y=table["digit"].to_numpy(),
        predicted=np.load(fixtures / "digits_mlp_predictions.npy", allow_pickle=False).astype(np.int64),
    )


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
