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
    assert rebuilt["files"] == manifest["files"]
    assert (tmp_path / "MANIFEST.json").read_bytes() == (fixtures_dir / "MANIFEST.json").read_bytes()
    for name in manifest["files"]:
        assert _sha256(tmp_path / name) == manifest["files"][name]["sha256"], name
