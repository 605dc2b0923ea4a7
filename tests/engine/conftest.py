"""Shared fixtures for the engine tests: fixture files, data set refs, tiny models."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The engine is imported as `workers.*`; make that work however pytest is run.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from workers.engine.datasets import inspect_dataset  # noqa: E402
from workers.engine.types import DatasetRef, ModelSpec  # noqa: E402

FIXTURES = ROOT / "fixtures"


def sha256_of(path: Path | str) -> str:
    """SHA-256 of a file, hex."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The committed fixtures folder (built by scripts/build_fixtures.py)."""
    if not (FIXTURES / "MANIFEST.json").exists():
        pytest.fail("fixtures/ is missing: run `python scripts/build_fixtures.py`")
    return FIXTURES


@pytest.fixture(scope="session")
def pyarrow_parquet() -> ModuleType:
    """``pyarrow.parquet``, or skip: some environments carry a pyarrow that cannot import."""
    try:
        import pyarrow.parquet
    except ImportError as exc:  # not only ModuleNotFoundError: a pyarrow built for another numpy fails too
        pytest.skip(f"pyarrow is not importable here: {exc}")
    return pyarrow.parquet


@pytest.fixture(scope="session")
def build_fixtures_module() -> ModuleType:
    """scripts/build_fixtures.py imported as a module."""
    spec = importlib.util.spec_from_file_location("build_fixtures", ROOT / "scripts" / "build_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def make_ref() -> Callable[..., DatasetRef]:
    """Build a DatasetRef for a file, with columns and rows taken from inspecting it."""

    def make(path: Path | str, fmt: str, label: str | None = None, *, rows: bool = True) -> DatasetRef:
        info = inspect_dataset(str(path), fmt)
        return DatasetRef(
            path=str(path),
            format=fmt,
            sha256=sha256_of(path),
            columns=tuple(c.name for c in info.columns),
            label_column=label,
            rows=info.rows if rows else None,
        )

    return make


@pytest.fixture(scope="session")
def model_spec() -> Callable[[Path | str], ModelSpec]:
    """Build a ModelSpec for an ONNX file."""

    def make(path: Path | str) -> ModelSpec:
        return ModelSpec(path=str(path), format="onnx", sha256=sha256_of(path))

    return make


@pytest.fixture(scope="session")
def bc_spec(fixtures_dir: Path, model_spec: Callable[[Path | str], ModelSpec]) -> ModelSpec:
    """The breast-cancer classifier as the engine sees it (the registered ModelVersion is ``bc_model``)."""
    return model_spec(fixtures_dir / "breast_cancer_logreg.onnx")


@pytest.fixture(scope="session")
def bc_test_ref(fixtures_dir: Path, make_ref: Callable[..., DatasetRef]) -> DatasetRef:
    return make_ref(fixtures_dir / "breast_cancer_test.csv", "csv", "diagnosis")


@pytest.fixture(scope="session")
def diabetes_ref(fixtures_dir: Path, make_ref: Callable[..., DatasetRef], pyarrow_parquet: ModuleType) -> DatasetRef:
    return make_ref(fixtures_dir / "diabetes.parquet", "parquet", "progression")


@pytest.fixture(scope="session")
def write_csv() -> Callable[..., Path]:
    """Write text (or bytes) to a file and return its path."""

    def write(path: Path, content: str | bytes) -> Path:
        if isinstance(content, str):
            content = content.encode("utf-8")
        path.write_bytes(content)
        return path

    return write
