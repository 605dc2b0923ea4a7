"""The one input feed: every element type, every batch rule, row ranges, and the jobs that use it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from onnx import TensorProto, helper
from sklearn import metrics as skm

from workers.engine.errors import EngineError, InvalidDataset
from workers.engine.evaluate import evaluate
from workers.engine.feed import INPUT_DTYPES, Feed, input_batches, model_sized, raw_rows, read_blocks
from workers.engine.parity import Target, compare_backends, repeatable
from workers.engine.types import DatasetRef, ModelSpec, TensorSpec

MakeRef = Callable[..., DatasetRef]
MakeSpec = Callable[[Path | str], ModelSpec]

ONNX_TYPES = {
    "float32": TensorProto.FLOAT,
    "float64": TensorProto.DOUBLE,
    "float16": TensorProto.FLOAT16,
    "int8": TensorProto.INT8,
    "int16": TensorProto.INT16,
    "int32": TensorProto.INT32,
    "int64": TensorProto.INT64,
    "uint8": TensorProto.UINT8,
    "uint16": TensorProto.UINT16,
    "uint32": TensorProto.UINT32,
    "uint64": TensorProto.UINT64,
    "bool": TensorProto.BOOL,
    "string": TensorProto.STRING,
}
FEATURES = ["a", "b", "c"]


def _sum_model(path: Path, dtype: str, rows: int | None = None) -> Path:
    """y = sum(cast(x, double)) per row: any element type in, one number out."""
    nodes = [
        helper.make_node("Cast", ["x"], ["xd"], to=TensorProto.DOUBLE),
        helper.make_node("ReduceSum", ["xd", "axes"], ["y"], keepdims=1),
    ]
    graph = helper.make_graph(
        nodes,
        "sum",
        [helper.make_tensor_value_info("x", ONNX_TYPES[dtype], [rows, len(FEATURES)])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [rows, 1])],
        [onnx.numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _table(rows: int = 23, *, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 2, size=(rows, len(FEATURES)))  # fits every type, bool included
    frame = pd.DataFrame(values, columns=FEATURES)
    frame["y"] = frame[FEATURES].sum(axis=1).astype(float)
    return frame


def _write(frame: pd.DataFrame, tmp_path: Path, fmt: str, make_ref: MakeRef, name: str = "t") -> DatasetRef:
    path = tmp_path / f"{name}.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=7)
    return make_ref(path, fmt, "y")


# ------------------------------------------------------------ element types


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("dtype", sorted(INPUT_DTYPES))
def test_every_element_type_feeds_evaluate_and_parity(
    tmp_path: Path, make_ref: MakeRef, model_spec: MakeSpec, fmt: str, dtype: str
) -> None:
    frame = _table()
    ref = _write(frame, tmp_path, fmt, make_ref)
    model = model_spec(_sum_model(tmp_path / f"{dtype}.onnx", dtype))

    feed = Feed(ref, (TensorSpec("x", dtype, (None, 3)),), label="y", label_type="number", block_rows=5)
    x = feed.matrix()
    assert x.dtype == np.dtype(INPUT_DTYPES[dtype]) and x.shape == (23, 3) and x.flags.c_contiguous
    if dtype == "string":
        assert {type(v) for v in x.ravel()} == {str}
        assert pd.to_numeric(pd.Series(x.ravel())).tolist() == frame[FEATURES].to_numpy().ravel().tolist()
    else:
        np.testing.assert_array_equal(x.astype(np.float64), frame[FEATURES].to_numpy(dtype=np.float64))

    result = evaluate(model, ref, task="regression", batch_size=4)
    assert result.rows == 23 and result.metrics["mae"] == 0.0

    batches = repeatable(lambda: input_batches(model, ref, batch_size=4, feature_columns=FEATURES))
    parity = compare_backends(
        model, batches, reference=Target("onnxruntime"), candidates=[Target("onnxruntime")], total_rows=23
    )
    assert parity.rows == 23 and parity.candidates[0].status == "ok"
    assert parity.candidates[0].outputs[0].max_abs == 0.0


def test_fractions_and_text_are_refused_with_the_column_and_a_value(
    tmp_path: Path, make_ref: MakeRef, model_spec: MakeSpec
) -> None:
    frame = _table()
    frame["b"] = frame["b"].astype(float)
    frame.loc[9, "b"] = 0.5
    ref = _write(frame, tmp_path, "csv", make_ref)
    with pytest.raises(
        EngineError, match=r"column 'b' holds values the model input 'x' \(int8\) cannot take, e.g. 0.5"
    ):
        evaluate(model_spec(_sum_model(tmp_path / "i.onnx", "int8")), ref, task="regression")
    frame["b"] = frame["b"].astype(object)
    frame.loc[9, "b"] = "lots"
    ref = _write(frame, tmp_path, "csv", make_ref, "text")
    with pytest.raises(
        EngineError, match=r"column 'b' holds values the model input 'x' \(float32\) cannot take, e.g. 'lots'"
    ):
        evaluate(model_spec(_sum_model(tmp_path / "f.onnx", "float32")), ref, task="regression")


# ------------------------------------------------------------ batch rules


@pytest.mark.parametrize("fixed", [None, 1, 4])
@pytest.mark.parametrize("batch_size", [1, 3, 4, 10, 1000])
def test_batch_rules_give_the_same_predictions(
    tmp_path: Path, make_ref: MakeRef, model_spec: MakeSpec, fixed: int | None, batch_size: int
) -> None:
    frame = _table(rows=23)
    ref = _write(frame, tmp_path, "csv", make_ref)
    model = model_spec(_sum_model(tmp_path / "m.onnx", "float32", rows=fixed))
    # Dynamic or fixed batch axis, any batch size: same rows, same scores.
    result = evaluate(model, ref, task="regression", batch_size=batch_size)
    assert result.rows == 23 and result.metrics["mae"] == 0.0 and result.batch_size == batch_size
    batches = repeatable(lambda: input_batches(model, ref, batch_size=batch_size, max_rows=17))
    parity = compare_backends(
        model, batches, reference=Target("onnxruntime"), candidates=[Target("onnxruntime")], total_rows=17
    )
    assert parity.rows == 17 and parity.candidates[0].status == "ok", parity.candidates[0].error
    sized = list(model_sized(input_batches(model, ref, batch_size=batch_size, max_rows=17), fixed))
    if fixed is not None:
        assert {len(b["x"]) for b in sized} == {fixed}  # a runtime fed these directly accepts them


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_batches_are_whole_across_read_blocks(tmp_path: Path, make_ref: MakeRef, fmt: str) -> None:
    frame = _table(rows=50)
    ref = _write(frame, tmp_path, fmt, make_ref)
    feed = Feed(ref, (TensorSpec("x", "float32", (None, 3)),), label="y", block_rows=7)
    sizes = [len(b["x"]) for b in feed.batches(4)]
    assert sizes == [4] * 12 + [2]  # blocks of 7 rows never cut a batch short
    blocks = list(feed.blocks(4))
    assert all(b.rows % 4 == 0 for b in blocks[:-1]) and sum(b.rows for b in blocks) == 50
    assert [b.offset for b in blocks] == list(np.cumsum([0] + [b.rows for b in blocks[:-1]]))
    np.testing.assert_array_equal(np.concatenate([b.labels for b in blocks]), frame["y"].astype(str).to_numpy())


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_row_ranges(tmp_path: Path, make_ref: MakeRef, fmt: str) -> None:
    frame = _table(rows=40, seed=3)
    ref = _write(frame, tmp_path, fmt, make_ref)
    feed = Feed(ref, (TensorSpec("x", "float64", (None, 3)),), block_rows=6)
    for start, stop in [(0, 40), (5, 17), (13, 14), (35, None), (7, 7 + 12)]:
        want = frame[FEATURES].to_numpy(dtype=np.float64)[start:stop]
        np.testing.assert_array_equal(feed.matrix(start, stop), want)
        blocks = list(feed.blocks(5, start=start, stop=stop))
        assert blocks[0].offset == start and sum(b.rows for b in blocks) == len(want)
    with pytest.raises(EngineError, match="no rows in that range"):
        feed.matrix(40, 50)


# ------------------------------------------------------------ reading


def test_csv_floats_are_read_exactly(tmp_path: Path, make_ref: MakeRef) -> None:
    rng = np.random.default_rng(7)
    values = np.concatenate(
        [rng.standard_normal(3000) * 10.0 ** rng.integers(-30, 30, 3000), [5e-324, 1.7976931348623157e308]]
    )
    path = tmp_path / "f.csv"
    path.write_text("v,y\n" + "".join(f"{v!r},1\n" for v in values))
    (block,) = read_blocks(make_ref(path, "csv", "y"), ["v"], {"v": "number"})
    assert block.columns["v"].tolist() == [float(repr(v)) for v in values]


def test_csv_the_arrow_reader_refuses_is_read_as_before(tmp_path: Path, make_ref: MakeRef) -> None:
    # Spaces around numbers, quoted newlines, a BOM and NA spellings: read as pandas reads them.
    path = tmp_path / "odd.csv"
    path.write_bytes('\ufeffa,b,note\n1, 2 ,"two\nlines"\n3,NA,x\n 4.5,nan,\n'.encode())
    ref = make_ref(path, "csv")
    (block,) = read_blocks(ref, ["a", "b", "note"], {"a": "number", "b": "number", "note": "text"})
    assert block.columns["a"].tolist() == [1.0, 3.0, 4.5]
    assert block.columns["b"][0] == 2.0 and block.missing["b"].tolist() == [False, True, True]
    assert block.columns["note"][:2].tolist() == ["two\nlines", "x"] and block.missing["note"].tolist() == [
        False,
        False,
        True,
    ]


def test_csv_errors_keep_their_messages(tmp_path: Path, make_ref: MakeRef, write_csv) -> None:
    ref = DatasetRef(str(write_csv(tmp_path / "bad.csv", b"a,b\n1,2\n\xff\xfe,3\n")), "csv", "", ("a", "b"))
    with pytest.raises(InvalidDataset, match="not valid UTF-8 near byte offset 8 \\(line 3\\)"):
        list(read_blocks(ref, ["a", "b"], {"a": "number", "b": "number"}))


def test_missing_values_are_counted_across_blocks(tmp_path: Path, make_ref: MakeRef, model_spec: MakeSpec) -> None:
    frame = _table(rows=30).astype({"a": float})
    frame.loc[[6, 7, 21], "a"] = np.nan
    ref = _write(frame, tmp_path, "csv", make_ref)
    feed = Feed(ref, (TensorSpec("x", "float32", (None, 3)),), block_rows=4)
    with pytest.raises(EngineError, match="missing values in feature columns a"):
        list(feed.batches(2))
    model = model_spec(_sum_model(tmp_path / "m.onnx", "float32"))
    with pytest.raises(EngineError, match=r"column 'a' has 3 missing values \(first in data row 7\)"):
        evaluate(model, ref, task="regression", batch_size=3)


def test_profile_rows_convert_by_the_same_rules(tmp_path: Path, make_ref: MakeRef, model_spec: MakeSpec) -> None:
    frame = _table(rows=12)
    ref = _write(frame, tmp_path, "parquet", make_ref)
    model = model_spec(_sum_model(tmp_path / "s.onnx", "string"))
    table, preprocess = raw_rows(model, ref, rows=5)
    assert len(table) == 5 and list(table.columns) == FEATURES
    batch = preprocess(table.iloc[1:3], (TensorSpec("x", "string", (None, 3)),))
    assert batch["x"].tolist() == frame[FEATURES].iloc[1:3].astype(str).to_numpy().tolist()


def test_classification_scores_do_not_depend_on_the_batch_size(bc_spec: ModelSpec, bc_test_ref: DatasetRef) -> None:
    import onnxruntime as ort

    test = pd.read_csv(bc_test_ref.path)
    session = ort.InferenceSession(bc_spec.path, providers=["CPUExecutionProvider"])
    x = test.drop(columns="diagnosis").to_numpy(dtype=np.float32)
    predicted = session.run(None, {session.get_inputs()[0].name: x})[0]
    results = [evaluate(bc_spec, bc_test_ref, task="classification", batch_size=n) for n in (1, 7, 256, 8192)]
    assert all(r.metrics == results[0].metrics for r in results)
    assert results[0].metrics["accuracy"] == skm.accuracy_score(test["diagnosis"], predicted)
    assert results[0].confusion_matrix == skm.confusion_matrix(test["diagnosis"], predicted).tolist()
