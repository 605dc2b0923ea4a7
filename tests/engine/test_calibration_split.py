"""Calibration rows for static INT8: drawn per class with a seed, never among the rows the variants are scored on."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
from PIL import Image

from workers.engine.calibration import first_rows, read_labels, split_rows, stratified_sample
from workers.engine.feed import Feed
from workers.engine.types import DatasetRef, TensorSpec


def _sorted_table(tmp_path, classes: int = 5, per_class: int = 40):
    frame = pd.DataFrame({"x0": np.arange(classes * per_class, dtype=np.float32)})
    frame["x1"] = frame["x0"] * 2
    frame["y"] = np.repeat([f"c{i}" for i in range(classes)], per_class)  # sorted by label
    path = tmp_path / "sorted.csv"
    frame.to_csv(path, index=False)
    return frame, DatasetRef(str(path), "csv", "", ("x0", "x1", "y"), "y", rows=len(frame))


def _png(value: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((4, 4), value, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_calibration_rows_are_disjoint_from_evaluation_and_cover_every_class(tmp_path):
    frame, ref = _sorted_table(tmp_path)
    split = split_rows(ref, rows=20, seed=7, label="y", total=len(frame))
    assert split.method == "stratified"
    assert not (split.calibration & split.evaluation).any()
    assert (split.calibration | split.evaluation).all()
    assert split.calibration.sum() == 20
    # the first 20 rows would all be class c0; the split has every class, in proportion
    assert set(frame["y"][split.calibration]) == {f"c{i}" for i in range(5)}
    assert split.classes == {f"c{i}": 4 for i in range(5)}
    assert split.record()["indices"] == np.flatnonzero(split.calibration).tolist()


def test_split_is_reproducible_from_its_seed(tmp_path):
    frame, ref = _sorted_table(tmp_path)
    a = split_rows(ref, rows=30, seed=3, label="y", total=len(frame))
    b = split_rows(ref, rows=30, seed=3, label="y", total=len(frame))
    c = split_rows(ref, rows=30, seed=4, label="y", total=len(frame))
    assert a.record() == b.record()
    assert a.record()["indices"] != c.record()["indices"]


def test_every_class_keeps_a_row_for_evaluation_and_gets_one_for_calibration():
    labels = np.array(["a"] * 100 + ["b"] * 2 + ["c"] * 3)
    mask, classes = stratified_sample(labels, 10, seed=0)
    assert mask.sum() == 10
    assert classes["b"] == 1 and classes["c"] >= 1
    for name in "abc":
        assert (~mask & (labels == name)).any()


def test_image_archive_sorted_by_class_is_sampled_from_every_class(tmp_path):
    path = tmp_path / "images.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for cls in range(4):
            for i in range(10):
                archive.writestr(f"class{cls}/{i:02d}.png", _png(cls * 60 + i))
    ref = DatasetRef(str(path), "imagefolder", "", ("image", "label"), "label", rows=40)
    labels = read_labels(ref, "label")
    assert list(labels[:10]) == ["class0"] * 10  # stored sorted by class
    split = split_rows(ref, rows=8, seed=0, label="label", total=40)
    assert set(labels[split.calibration]) == {"class0", "class1", "class2", "class3"}
    assert not (split.calibration & split.evaluation).any()


def test_feed_reads_only_the_selected_rows_in_order(tmp_path):
    frame, ref = _sorted_table(tmp_path)
    select = np.zeros(len(frame), dtype=bool)
    select[[0, 3, 41, 42, 150, 199]] = True
    spec = TensorSpec("x", "float32", (None, 2))
    feed = Feed(ref, (spec,), feature_columns=["x0", "x1"], block_rows=16, select=select)
    got = np.concatenate([b["x"] for b in feed.batches(4)])
    assert np.array_equal(got, frame[["x0", "x1"]].to_numpy(np.float32)[select])
    labelled = Feed(ref, (spec,), feature_columns=["x0", "x1"], label="y", block_rows=16, select=select)
    labels = np.concatenate([b.labels for b in labelled.blocks(4)])
    assert list(labels) == list(frame["y"][select])


def test_first_rows_keeps_the_first_marked_rows():
    mask = np.array([True, False, True, True, False, True])
    assert first_rows(mask, 2).tolist() == [True, False, True, False, False, False]
    assert first_rows(mask, 10).tolist() == mask.tolist()


def test_a_continuous_target_is_sampled_at_random_not_by_value(tmp_path):
    frame = pd.DataFrame({"x0": np.linspace(0, 1, 50, dtype=np.float32), "y": np.linspace(0, 5, 50)})
    path = tmp_path / "reg.csv"
    frame.to_csv(path, index=False)
    ref = DatasetRef(str(path), "csv", "", ("x0", "y"), "y", rows=50)
    split = split_rows(ref, rows=10, seed=1, label="y", total=50)
    assert split.method == "random" and split.calibration.sum() == 10
    assert not (split.calibration & split.evaluation).any()
