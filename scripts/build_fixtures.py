"""Build the small models and data sets the engine tests and demos use.

Run ``python scripts/build_fixtures.py [--out DIR]``; the default output is
``fixtures/`` next to the ``scripts/`` folder. Every run writes the same bytes
for the same library versions, which MANIFEST.json records together with each
file's SHA-256, so a test can rebuild the fixtures and compare.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import skl2onnx
import sklearn
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "fixtures"
# Pinned so that a newer skl2onnx does not silently raise the opset and
# change the bytes.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
SEED = 0


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet  # the submodule is what is needed
    except ImportError as exc:
        raise SystemExit(f"build_fixtures: pyarrow is needed to write diabetes.parquet: {exc}") from exc
    return pyarrow


def _snake(name: str) -> str:
    return "_".join(name.lower().split())


def _write_csv(path: Path, columns: Sequence[str], features: np.ndarray, labels: np.ndarray) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(columns)
        for row, label in zip(features, labels, strict=True):
            # repr() is the shortest text that parses back to the same float64.
            writer.writerow([repr(float(v)) for v in row] + [str(int(label))])


def _finish_onnx(model: onnx.ModelProto, graph_name: str) -> bytes:
    # skl2onnx names the graph with a random UUID and lists the default
    # domain twice; fix both so the bytes are reproducible and clean.
    model.graph.name = graph_name
    model.doc_string = ""
    seen: dict[str, int] = {}
    for op in model.opset_import:
        seen[op.domain] = max(seen.get(op.domain, 0), op.version)
    del model.opset_import[:]
    # Default domain first: cutting the file short then drops the ai.onnx.ml
    # import, which the checker notices, instead of leaving a valid model.
    for domain in sorted(seen, key=lambda d: (d != "", d)):
        model.opset_import.add(domain=domain, version=seen[domain])
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def build_breast_cancer(out: Path) -> dict[str, Any]:
    """Write the breast-cancer CSVs and logistic-regression model; return their manifest entry."""
    data = load_breast_cancer()
    columns = [_snake(n) for n in data.feature_names]
    X, y = data.data, data.target
    _write_csv(out / "breast_cancer.csv", columns + ["diagnosis"], X, y)

    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=0.3, stratify=y, random_state=SEED)
    idx_test = np.sort(idx_test)
    _write_csv(out / "breast_cancer_test.csv", columns + ["diagnosis"], X[idx_test], y[idx_test])

    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=1000, random_state=SEED))])
    pipe.fit(X[idx_train], y[idx_train])
    model = convert_sklearn(
        pipe,
        initial_types=[("input", FloatTensorType([None, X.shape[1]]))],
        options={LogisticRegression: {"zipmap": False}},
        target_opset=TARGET_OPSET,
    )
    (out / "breast_cancer_logreg.onnx").write_bytes(_finish_onnx(model, "breast_cancer_logreg"))
    return {
        "model": "breast_cancer_logreg.onnx",
        "datasets": ["breast_cancer_test.csv", "breast_cancer.csv"],
        "task": "classification",
        "label_column": "diagnosis",
        "feature_count": int(X.shape[1]),
        "class_labels": [int(c) for c in pipe.classes_],
        "train_rows": int(len(idx_train)),
    }


def build_diabetes(out: Path) -> dict[str, Any]:
    """Write the diabetes Parquet file and ridge model; return their manifest entry."""
    pa = _pyarrow()
    import pyarrow.parquet as pq

    data = load_diabetes()
    X, y = data.data, data.target
    names = list(data.feature_names)  # already simple: age, sex, bmi, bp, s1..s6
    arrays = [pa.array(X[:, i], type=pa.float64()) for i in range(X.shape[1])]
    arrays.append(pa.array(y, type=pa.float64()))
    # Built from arrays, not pandas, so no pandas-version metadata is embedded.
    table = pa.Table.from_arrays(arrays, names=names + ["progression"])
    pq.write_table(
        table,
        out / "diabetes.parquet",
        compression="zstd",
        compression_level=3,
        use_dictionary=False,
        write_statistics=True,
        row_group_size=1024,
    )

    ridge = Ridge(alpha=1.0).fit(X, y)
    model = convert_sklearn(
        ridge,
        initial_types=[("input", FloatTensorType([None, X.shape[1]]))],
        target_opset=TARGET_OPSET,
    )
    (out / "diabetes_ridge.onnx").write_bytes(_finish_onnx(model, "diabetes_ridge"))
    return {
        "model": "diabetes_ridge.onnx",
        "datasets": ["diabetes.parquet"],
        "task": "regression",
        "label_column": "progression",
        "feature_count": int(X.shape[1]),
        "train_rows": int(len(y)),
    }


def digits_features() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as the MLP sees them: 64 pixels scaled to [0, 1] (float32), and the digit."""
    data = load_digits()
    return (data.data / 16.0).astype(np.float32), data.target


#: Files whose bytes depend on the CPU family as well as on the library versions:
#: OpenBLAS picks its kernels by CPU (Haswell, SkylakeX, Zen, ...), the kernels
#: round differently in the last bits, and 600 epochs of MLP training carry
#: that into the weights (here up to 5e-3 apart between two families, with
#: the same predictions on every training row). Rebuilt on another family
#: they are the same model, not the same bytes.
CPU_DEPENDENT = ("digits_mlp.onnx",)


def build_digits_mlp(out: Path, *, hidden: int = 32) -> dict[str, Any]:
    """Write an MLP trained on the digits as a plain MatMul/Add/Relu ONNX graph (no ai.onnx.ml operators,
    so every engine and quantizer takes it) and scikit-learn's own predictions beside it; return its entry."""
    x, y = digits_features()
    # One BLAS thread: the trained weights, and so the bytes, do not depend on the core count.
    with threadpool_limits(limits=1):
        clf = MLPClassifier(hidden_layer_sizes=(hidden,), max_iter=600, random_state=SEED).fit(x, y)
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
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", x.shape[1]])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(clf.classes_)])],
        [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="evalsvc-fixtures")
    onnx.checker.check_model(model, full_check=True)
    (out / "digits_mlp.onnx").write_bytes(model.SerializeToString())
    np.save(out / "digits_mlp_predictions.npy", clf.predict(x).astype(np.uint8), allow_pickle=False)
    return {
        "model": "digits_mlp.onnx",
        "predictions": "digits_mlp_predictions.npy",
        "data": "sklearn.datasets.load_digits: pixels / 16 as float32, in file order",
        "feature_count": int(x.shape[1]),
        "hidden": hidden,
        "train_rows": int(len(y)),
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    """Return the versions of the libraries whose output the fixture bytes depend on."""
    pa = _pyarrow()
    return {
        "numpy": np.__version__,
        "onnx": onnx.__version__,
        "pyarrow": pa.__version__,
        "scikit-learn": sklearn.__version__,
        "skl2onnx": skl2onnx.__version__,
    }


def build(out: Path) -> dict[str, Any]:
    """Write every fixture and MANIFEST.json into ``out`` and return the manifest."""
    _pyarrow()  # fail before writing anything rather than leave a partial set
    out.mkdir(parents=True, exist_ok=True)
    pairs = [build_breast_cancer(out), build_diabetes(out)]
    mlp = build_digits_mlp(out)
    names = sorted(
        {p["model"] for p in pairs} | {d for p in pairs for d in p["datasets"]} | {mlp["model"], mlp["predictions"]}
    )
    manifest = {
        "digits_mlp": mlp,
        "generator": "scripts/build_fixtures.py",
        "versions": library_versions(),
        "files": {n: {"sha256": _sha256(out / n), "size": (out / n).stat().st_size} for n in names},
        "pairs": pairs,
    }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    (out / "MANIFEST.json").write_text(text, encoding="utf-8")
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    args = parser.parse_args(argv)
    manifest = build(args.out)
    for name, entry in manifest["files"].items():
        print(f"wrote {os.path.join(str(args.out), name)}  {entry['size']:>8} bytes  sha256 {entry['sha256']}")
    print(f"wrote {os.path.join(str(args.out), 'MANIFEST.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
