"""apply_output: activations against scipy, top-k, label maps, thresholds, and NMS against a brute-force reference."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import special

from workers.engine.errors import EngineError
from workers.engine.processing import OutputSpec, apply_output, parse_processing_spec
from workers.engine.processing.post import box_iou, decode_boxes, nms, sigmoid, softmax, top_k


def _out(**fields: Any) -> OutputSpec:
    spec = parse_processing_spec({"output": fields}).output
    assert spec is not None
    return spec


# -------------------------------------------------------------- activations


def test_softmax_and_sigmoid_match_scipy() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(scale=20, size=(200, 7))
    x[0] = [1000, 999, -1000, 0, 1, 2, 3]  # would overflow a naive exp
    np.testing.assert_allclose(softmax(x), special.softmax(x, axis=1), rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(softmax(x).sum(axis=1), 1.0, rtol=1e-14)
    z = np.concatenate([rng.normal(scale=30, size=500), [-1000, -745, -40, 0, 40, 745, 1000]])
    with np.errstate(over="raise"):
        np.testing.assert_allclose(sigmoid(z), special.expit(z), rtol=1e-14, atol=1e-300)  # subnormals
    assert softmax(x.astype(np.float32)).dtype == np.float64


def test_top_k_ties_keep_class_order() -> None:
    scores = np.array([[0.2, 0.5, 0.5, 0.1], [0.3, 0.3, 0.3, 0.3]])
    idx, val = top_k(scores, 3)
    np.testing.assert_array_equal(idx, [[1, 2, 0], [0, 1, 2]])
    np.testing.assert_array_equal(val, [[0.5, 0.5, 0.2], [0.3, 0.3, 0.3]])
    assert top_k(scores, 10)[0].shape == (2, 4)


# ----------------------------------------------------------- classification


def test_softmax_labels_and_top_k() -> None:
    logits = np.array([[1.0, 3.0, 2.0], [5.0, 0.0, 5.0]], dtype=np.float32)
    post = apply_output({"logits": logits}, _out(activation="softmax", labels=["cat", "dog", "fox"], top_k=2))
    np.testing.assert_allclose(post.scores, special.softmax(logits.astype(np.float64), axis=1), rtol=1e-13)
    np.testing.assert_array_equal(post.classes, [1, 0])  # a tie goes to the first class
    assert post.labels.tolist() == ["dog", "cat"]
    assert post.class_labels == ("cat", "dog", "fox")
    assert post.top_k is not None
    np.testing.assert_array_equal(post.top_k.indices, [[1, 2], [0, 2]])
    assert post.top_k.labels.tolist() == [["dog", "fox"], ["cat", "fox"]]
    assert post.detections is None


def test_binary_sigmoid_and_threshold() -> None:
    logit = np.array([[-2.0], [0.0], [0.5], [3.0]])
    p = special.expit(logit[:, 0])
    post = apply_output({"y": logit}, _out(activation="sigmoid", labels=["neg", "pos"]))
    np.testing.assert_allclose(post.scores, np.column_stack([1 - p, p]), rtol=1e-14)
    assert post.labels.tolist() == ["neg", "pos", "pos", "pos"]  # p >= 0.5, 0.5 included
    strict = apply_output({"y": logit}, _out(activation="sigmoid", threshold=0.6))
    np.testing.assert_array_equal(strict.classes, [0, 0, 1, 1])
    assert strict.labels is None
    # Two softmax columns: the threshold applies to the second.
    two = apply_output({"y": np.column_stack([np.zeros(4), logit[:, 0]])}, _out(activation="softmax", threshold=0.9))
    np.testing.assert_array_equal(two.classes, [0, 0, 0, 1])
    # A raw decision function thresholded at zero, one-dimensional.
    raw = apply_output({"d": np.array([-0.1, 0.0, 0.2])}, _out(threshold=0.0))
    np.testing.assert_array_equal(raw.classes, [0, 1, 1])


def test_classification_errors() -> None:
    three = {"y": np.zeros((2, 3))}
    with pytest.raises(EngineError, match="threshold applies to binary models .* has 3 columns"):
        apply_output(three, _out(threshold=0.5))
    with pytest.raises(EngineError, match=r"output.labels: the label map has 2 labels for classes 0..1 but output 'y'"):
        apply_output(three, _out(labels=["a", "b"]))
    with pytest.raises(EngineError, match="label map has 3 labels for classes 0..4"):
        apply_output({"y": np.zeros((2, 5))}, _out(labels={"0": "a", "2": "b", "4": "c"}))
    with pytest.raises(EngineError, match="single column, where softmax is always 1; use sigmoid"):
        apply_output({"y": np.zeros((2, 1))}, _out(activation="softmax"))
    with pytest.raises(EngineError, match=r"several outputs \(a, b\); set output.output_name"):
        apply_output({"a": np.zeros((2, 3)), "b": np.zeros((2, 3))}, _out())
    with pytest.raises(EngineError, match="no output 'c'; its outputs are: a, b"):
        apply_output({"a": np.zeros((2, 3)), "b": np.zeros((2, 3))}, _out(output_name="c"))
    with pytest.raises(EngineError, match=r"needs numbers shaped \(rows, classes\)"):
        apply_output({"y": np.zeros((2, 3, 4))}, _out())
    with pytest.raises(EngineError, match=r"holds NaN scores \(first in batch row 2\)"):
        apply_output({"y": np.array([[0.0, 1.0], [np.nan, 0.0]])}, _out(activation="softmax"))
    # With one float matrix among label outputs, that one is the score.
    picked = apply_output({"label": np.array([1, 0]), "p": np.array([[0.2, 0.8], [0.6, 0.4]])}, _out())
    np.testing.assert_array_equal(picked.classes, [1, 0])


# ------------------------------------------------------------ detection / NMS


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def brute_force_nms(boxes: np.ndarray, scores: np.ndarray, thr: float, classes: np.ndarray | None) -> list[int]:
    """The definition, box by box: visit by (-score, index); keep unless a kept box of its class overlaps > thr."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    kept: list[int] = []
    for i in order:
        rivals = [k for k in kept if classes is None or classes[k] == classes[i]]
        if all(_iou(boxes[i], boxes[k]) <= thr for k in rivals):
            kept.append(i)
    return kept


def _random_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    xy = rng.uniform(0, 50, size=(n, 2))
    wh = rng.uniform(1, 30, size=(n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


def test_nms_matches_brute_force_on_random_boxes() -> None:
    rng = np.random.default_rng(42)
    for trial in range(60):
        n = int(rng.integers(1, 60))
        boxes = _random_boxes(rng, n)
        # Coarse scores make ties; some boxes are exact duplicates.
        scores = rng.integers(0, 8, n) / 8.0
        dup = rng.random(n) < 0.15
        boxes[dup] = boxes[0]
        classes = rng.integers(0, 3, n)
        thr = float(rng.choice([0.0, 0.3, 0.5, 0.7, 1.0]))
        assert nms(boxes, scores, thr).tolist() == brute_force_nms(boxes, scores, thr, None), trial
        assert nms(boxes, scores, thr, classes).tolist() == brute_force_nms(boxes, scores, thr, classes), trial
    ious = box_iou(boxes, boxes)
    assert ious.shape == (n, n)
    assert all(abs(ious[i, j] - _iou(boxes[i], boxes[j])) < 1e-12 for i in range(n) for j in range(n))


def test_nms_known_answers() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], dtype=float)
    scores = np.array([0.8, 0.9, 0.7])
    assert box_iou(boxes[:1], boxes[1:2])[0, 0] == pytest.approx(81 / 119)
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]  # box 0 overlaps the better box 1 by 0.68
    assert nms(boxes, scores, 0.7).tolist() == [1, 0, 2]
    # Suppression needs IoU strictly above the threshold, as torchvision.
    half = np.array([[0, 0, 2, 1], [0, 0, 1, 1]], dtype=float)
    assert nms(half, np.array([0.9, 0.8]), 0.5).tolist() == [0, 1]
    assert nms(half, np.array([0.9, 0.8]), 0.49).tolist() == [0]
    # Equal scores: the lower index wins; degenerate boxes suppress nothing.
    assert nms(boxes[[0, 0]], np.array([0.5, 0.5]), 0.5).tolist() == [0]
    assert nms(np.zeros((2, 4)), np.array([0.5, 0.6]), 0.0).tolist() == [1, 0]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_decode_boxes() -> None:
    np.testing.assert_array_equal(decode_boxes(np.array([[5, 5, 4, 2]]), "cxcywh"), [[3, 4, 7, 6]])
    np.testing.assert_array_equal(decode_boxes(np.array([[1, 2, 3, 4]]), "xywh"), [[1, 2, 4, 6]])
    np.testing.assert_array_equal(decode_boxes(np.array([[1, 2, 3, 4]]), "xyxy"), [[1, 2, 3, 4]])


def test_detection_pipeline() -> None:
    # Two images, four candidate boxes each, centre format.
    boxes = np.array(
        [
            [[5, 5, 10, 10], [5.5, 5.5, 10, 10], [30, 30, 4, 4], [5, 5, 10, 10]],
            [[10, 10, 2, 2], [50, 50, 8, 8], [10, 10, 2, 2], [0, 0, 1, 1]],
        ],
        dtype=np.float32,
    )
    logits = np.array([[3.0, 2.0, -3.0, 1.0], [0.0, 1.0, 0.5, 2.0]])
    classes = np.array([[1, 1, 3, 3], [1, 3, 1, 1]], dtype=np.float32)
    spec = _out(
        activation="sigmoid",
        labels={"1": "person", "3": "car"},
        detection={
            "boxes_output": "boxes",
            "scores_output": "scores",
            "classes_output": "classes",
            "format": "cxcywh",
            "score_threshold": 0.5,
            "iou_threshold": 0.5,
            "max_detections": 2,
        },
    )
    post = apply_output({"boxes": boxes, "scores": logits, "classes": classes}, spec)
    assert post.scores is None and post.detections is not None and len(post.detections) == 2
    first, second = post.detections
    # Image 1: box 2 scores below 0.5; box 1 overlaps box 0 (same class); box 3 is another class.
    np.testing.assert_allclose(first.scores, special.expit([3.0, 1.0]))
    np.testing.assert_array_equal(first.boxes, [[0, 0, 10, 10], [0, 0, 10, 10]])
    assert first.labels.tolist() == ["person", "car"] and first.classes.dtype == np.int64
    # Image 2: all pass (0.5 >= 0.5); box 0 duplicates the better box 2 and goes; the best two of three stay.
    np.testing.assert_allclose(second.scores, special.expit([2.0, 1.0]))
    assert second.labels.tolist() == ["person", "car"]

    agnostic = _out(detection={"boxes_output": "b", "scores_output": "s", "class_agnostic": True})
    one = apply_output({"b": boxes[0], "s": special.expit(logits[0])}, agnostic)  # no batch axis
    assert len(one.detections) == 1 and one.detections[0].classes.tolist() == [0, 0]


def test_detection_with_class_scores() -> None:
    boxes = np.array([[[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 60, 60]]], dtype=float)
    class_logits = np.array([[[0.0, 4.0, 0.0], [0.0, 0.0, 3.0], [2.0, 0.0, 0.0]]])
    spec = _out(
        activation="softmax", labels=["bg", "cat", "dog"], detection={"boxes_output": "b", "scores_output": "s"}
    )
    (det,) = apply_output({"b": boxes, "s": class_logits}, spec).detections
    probs = special.softmax(class_logits[0], axis=1)
    # Each box takes its best class; boxes 0 and 1 differ in class, so both stay.
    np.testing.assert_allclose(det.scores, [probs[0, 1], probs[1, 2], probs[2, 0]])
    assert det.labels.tolist() == ["cat", "dog", "bg"]


def test_detection_errors() -> None:
    det = {"boxes_output": "b", "scores_output": "s"}
    with pytest.raises(EngineError, match="no output 'b'"):
        apply_output({"s": np.zeros((1, 2))}, _out(detection=det))
    with pytest.raises(EngineError, match=r"detection outputs must be boxes \(images, boxes, 4\)"):
        apply_output({"b": np.zeros((1, 2, 5)), "s": np.zeros((1, 2))}, _out(detection=det))
    with pytest.raises(EngineError, match="softmax needs per-class scores"):
        apply_output({"b": np.zeros((1, 2, 4)), "s": np.zeros((1, 2))}, _out(activation="softmax", detection=det))
    with pytest.raises(EngineError, match="class indices that are not integers"):
        apply_output(
            {"b": np.zeros((1, 2, 4)), "s": np.ones((1, 2)), "c": np.array([[0.5, 1.0]])},
            _out(detection={**det, "classes_output": "c"}),
        )
    with pytest.raises(EngineError, match="no label for detected class index 2"):
        apply_output(
            {"b": np.zeros((1, 1, 4)), "s": np.ones((1, 1)), "c": np.array([[2]])},
            _out(labels=["a", "b"], detection={**det, "classes_output": "c"}),
        )
