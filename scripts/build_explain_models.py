"""Build the breast-cancer MLP the explanation tests and benchmark use, as ONNX and TorchScript.

A small torch MLP (30 -> 64 -> 32 -> 2, ReLU, softmax) trained on
``fixtures/breast_cancer.csv`` with the standardisation folded into its first
layer, so it takes the raw columns. Deterministic (fixed seed, one thread,
full-batch training); the files are written on demand into a cache folder and
never committed::

    python scripts/build_explain_models.py OUT_DIR
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "fixtures" / "breast_cancer.csv"
LABEL = "diagnosis"
OPSET = 17


class BreastCancerMLP(nn.Module):
    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
        self.body = nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 2))

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.body((input - self.mean) / self.std), dim=-1)


def breast_cancer() -> tuple[np.ndarray, np.ndarray, list[str]]:
    frame = pd.read_csv(DATA)
    features = [c for c in frame.columns if c != LABEL]
    return frame[features].to_numpy(np.float64), frame[LABEL].to_numpy(np.int64), features


def train_mlp(epochs: int = 300) -> BreastCancerMLP:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    x, y, _ = breast_cancer()
    model = BreastCancerMLP(x.mean(axis=0), x.std(axis=0) + 1e-12)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(epochs):
        opt.zero_grad()
        loss = nn.functional.nll_loss(torch.log(model(xt) + 1e-9), yt)
        loss.backward()
        opt.step()
    return model.eval()


def build(out: Path) -> dict[str, Path]:
    """Write ``breast_cancer_mlp.onnx`` and ``breast_cancer_mlp.pt`` into ``out`` (reused when present)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"onnx": out / "breast_cancer_mlp.onnx", "torchscript": out / "breast_cancer_mlp.pt"}
    if all(p.exists() for p in paths.values()):
        return paths
    model = train_mlp()
    example = torch.zeros(4, 30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(paths["onnx"]),
            dynamo=False,
            input_names=["input"],
            output_names=["probabilities"],
            dynamic_axes={"input": {0: "batch"}, "probabilities": {0: "batch"}},
            opset_version=OPSET,
        )
        torch.jit.save(torch.jit.trace(model, example), str(paths["torchscript"]))
    return paths


if __name__ == "__main__":
    for kind, path in build(Path(sys.argv[1] if len(sys.argv) > 1 else "var/cache/models")).items():
        print(kind, path)
