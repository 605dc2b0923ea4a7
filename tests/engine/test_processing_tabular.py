"""prepare_tabular: column order, scaling and one-hot against scikit-learn and hand-computed answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from workers.engine.errors import InvalidDataset
from workers.engine.processing import TabularInput, parse_processing_spec, prepare_tabular
from workers.engine.processing.tabular import tabular_column_names


def _spec(**fields: object) -> TabularInput:
    spec = parse_processing_spec({"input": {"kind": "tabular", **fields}}).input
    assert isinstance(spec, TabularInput)
    return spec


def test_known_answer() -> None:
    frame = pd.DataFrame({"b": [1.0, 3.0, 5.0], "city": ["Paris", "Lyon", "Paris"], "a": [10, 20, 30], "y": [0, 1, 0]})
    spec = _spec(
        feature_columns=["a", "city", "b"],
        scaling={"a": {"mean": 20, "std": 10}},
        categories={"city": ["Paris", "Nice", "Lyon"]},
        dtype="float64",
        input_name="x",
    )
    out = prepare_tabular(frame, spec)
    assert list(out) == ["x"]
    np.testing.assert_array_equal(
        out["x"],
        [
            [-1.0, 1.0, 0.0, 0.0, 1.0],
            [0.0, 0.0, 0.0, 1.0, 3.0],
            [1.0, 1.0, 0.0, 0.0, 5.0],
        ],
    )
    assert out["x"].dtype == np.float64 and out["x"].flags.c_contiguous
    assert tabular_column_names(spec) == ["a", "city=Paris", "city=Nice", "city=Lyon", "b"]
    assert prepare_tabular(frame, _spec(feature_columns=["b"]))["input"].dtype == np.float32


def test_matches_sklearn_column_transformer() -> None:
    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame(
        {
            "x1": rng.normal(5, 2, n),
            "color": rng.choice(["red", "green", "blue"], n),
            "x2": rng.integers(0, 100, n),
            "size": rng.choice([1, 2, 3], n),  # numbers as categories
        }
    )
    numeric, categorical = ["x1", "x2"], ["color", "size"]
    sk = ColumnTransformer(
        [
            ("num", StandardScaler(), numeric),
            ("cat", OneHotEncoder(categories=[["blue", "green", "red"], [1, 2, 3]], sparse_output=False), categorical),
        ]
    ).fit(frame)
    scaler = sk.named_transformers_["num"]
    spec = _spec(
        feature_columns=numeric + categorical,
        scaling={"kind": "standard", "mean": scaler.mean_.tolist(), "std": scaler.scale_.tolist()},
        categories={"color": ["blue", "green", "red"], "size": [1, 2, 3]},
        dtype="float64",
    )
    got = np.vstack([prepare_tabular(frame.iloc[i : i + 64], spec)["input"] for i in range(0, n, 64)])
    np.testing.assert_allclose(got, sk.transform(frame), rtol=0, atol=1e-12)


def test_unknown_categories() -> None:
    frame = pd.DataFrame({"c": ["a", "b", "z", "a"]})
    with pytest.raises(InvalidDataset) as err:
        prepare_tabular(frame, _spec(feature_columns=["c"], categories={"c": ["a", "b"]}), row_offset=100)
    assert "column 'c' holds the category 'z' in data row 103" in err.value.message
    assert "unknown_category" in err.value.message
    ignored = prepare_tabular(
        frame, _spec(feature_columns=["c"], categories={"c": ["a", "b"]}, unknown_category="ignore")
    )
    np.testing.assert_array_equal(ignored["input"], [[1, 0], [0, 1], [0, 0], [1, 0]])
    sk = OneHotEncoder(categories=[["a", "b"]], handle_unknown="ignore", sparse_output=False).fit(frame)
    np.testing.assert_array_equal(ignored["input"], sk.transform(frame))


def test_categories_compare_as_text() -> None:
    # A float column written as 1.0/2.0 holds the categories "1" and "2".
    frame = pd.DataFrame({"n": [1.0, 2.0, 1.0], "flag": [True, False, True]})
    spec = _spec(feature_columns=["n", "flag"], categories={"n": [2, 1], "flag": ["False", "True"]})
    np.testing.assert_array_equal(prepare_tabular(frame, spec)["input"], [[0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1]])


def test_bad_values_name_column_value_and_row() -> None:
    spec = _spec(feature_columns=["a", "b"])
    with pytest.raises(InvalidDataset, match=r"column 'b' holds 'oops' in data row 12, which is not a number"):
        prepare_tabular(pd.DataFrame({"a": [1, 2], "b": ["3", "oops"]}), spec, row_offset=10)
    with pytest.raises(InvalidDataset, match=r"column 'a' has 1 missing value \(first in data row 2\)"):
        prepare_tabular(pd.DataFrame({"a": [1.0, np.nan], "b": [1, 2]}), spec)
    with pytest.raises(InvalidDataset, match="lacks the feature columns the processing spec needs: b"):
        prepare_tabular(pd.DataFrame({"a": [1]}), spec)
    # Numeric text (CSV read as strings) is fine.
    np.testing.assert_array_equal(prepare_tabular(pd.DataFrame({"a": ["1.5"], "b": [2]}), spec)["input"], [[1.5, 2]])


def test_deterministic_and_batch_independent() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=50), "c": rng.choice(["u", "v"], 50)})
    spec = _spec(feature_columns=["c", "a"], scaling={"a": {"mean": 0.1, "std": 3}}, categories={"c": ["v", "u"]})
    whole = prepare_tabular(frame, spec)["input"]
    parts = np.vstack([prepare_tabular(frame.iloc[i : i + 7], spec)["input"] for i in range(0, 50, 7)])
    np.testing.assert_array_equal(whole, parts)
    np.testing.assert_array_equal(whole, prepare_tabular(frame, spec)["input"])
    np.testing.assert_array_equal(whole[:, 2], ((frame["a"] - 0.1) / 3).to_numpy(np.float32))
