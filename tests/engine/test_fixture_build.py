"""scripts/build_fixtures.py is deterministic and reproduces the committed fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from workers.engine.datasets import inspect_dataset
from workers.engine.formats import inspect_model


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest(fixtures_dir: Path) -> dict:
    return json.loads((fixtures_dir / "MANIFEST.json").read_text(encoding="utf-8"))


def test_manifest_matches_the_files(fixtures_dir: Path) -> None:
    manifest = _manifest(fixtures_dir)
    for name, entry in manifest["files"].items():
        path = fixtures_dir / name
        assert path.stat().st_size == entry["size"], name
        assert _sha256(path) == entry["sha256"], name


def test_manifest_pairs_fit_their_files(fixtures_dir: Path) -> None:
    for pair in _manifest(fixtures_dir)["pairs"]:
        info = inspect_model(str(fixtures_dir / pair["model"]), "onnx")
        assert info.inputs[0].shape == (None, pair["feature_count"])
        for name in pair["datasets"]:
            if name.endswith(".parquet"):
                pytest.importorskip("pyarrow.parquet", exc_type=ImportError)
            columns = [c.name for c in inspect_dataset(str(fixtures_dir / name), name.rsplit(".", 1)[1]).columns]
            assert columns[-1] == pair["label_column"]
            assert len(columns) - 1 == pair["feature_count"]


def test_digits_mlp_is_the_sklearn_model(digits_mlp) -> None:
    """The hand-written ONNX graph predicts exactly what the scikit-learn MLP it was built from predicted."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(digits_mlp.path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"input": digits_mlp.x})
    assert logits.shape == (len(digits_mlp.y), 10)
    assert np.array_equal(logits.argmax(1), digits_mlp.predicted)
    assert np.mean(digits_mlp.predicted == digits_mlp.y) > 0.95


def test_rebuild_is_byte_for_byte(
    tmp_path: Path, fixtures_dir: Path, build_fixtures_module: ModuleType, pyarrow_parquet: ModuleType
) -> None:
    manifest = _manifest(fixtures_dir)
    versions = build_fixtures_module.library_versions()
    if versions != manifest["versions"]:
        # Other library versions legitimately write other bytes (coefficients,
        # producer_version, Parquet created_by); the fixtures are pinned to these.
        pytest.skip(f"library versions differ from the fixtures': {versions} vs {manifest['versions']}")
    rebuilt = build_fixtures_module.build(tmp_path)
    other_cpu = set()
    for name in build_fixtures_module.CPU_DEPENDENT:
        if rebuilt["files"][name] != manifest["files"][name]:
            # Built on another CPU family (see CPU_DEPENDENT): it must still be the same model.
            _assert_same_mlp(tmp_path / name, fixtures_dir / name, fixtures_dir, build_fixtures_module)
            other_cpu.add(name)
    assert {n: e for n, e in rebuilt["files"].items() if n not in other_cpu} == {
        n: e for n, e in manifest["files"].items() if n not in other_cpu
    }
    if not other_cpu:
        assert (tmp_path / "MANIFEST.json").read_bytes() == (fixtures_dir / "MANIFEST.json").read_bytes()
    else:
        assert {k: v for k, v in rebuilt.items() if k != "files"} == {k: v for k, v in manifest.items() if k != "files"}
    for name in manifest["files"]:
        if name not in other_cpu:
            assert _sha256(tmp_path / name) == manifest["files"][name]["sha256"], name


def _assert_same_mlp(rebuilt: Path, committed: Path, fixtures_dir: Path, build: ModuleType) -> None:
    """Same graph, weights within 1e-2, size and predictions on every training row identical."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    assert rebuilt.stat().st_size == committed.stat().st_size
    new, old = onnx.load(str(rebuilt)), onnx.load(str(committed))
    assert [n.op_type for n in new.graph.node] == [n.op_type for n in old.graph.node]
    old_weights = {i.name: numpy_helper.to_array(i) for i in old.graph.initializer}
    for init in new.graph.initializer:
        weights = numpy_helper.to_array(init)
        assert weights.shape == old_weights[init.name].shape
        np.testing.assert_allclose(weights, old_weights[init.name], atol=1e-2, rtol=0)
    x, _ = build.digits_features()
    (logits,) = ort.InferenceSession(str(rebuilt), providers=["CPUExecutionProvider"]).run(None, {"input": x})
    np.testing.assert_array_equal(logits.argmax(1), np.load(fixtures_dir / "digits_mlp_predictions.npy"))
