"""Output processing: activation, top-k, label map, decision threshold, and object detection.

Everything is computed in float64 with numpy, so every backend's output goes
through the same arithmetic.

Classification
    The chosen output is ``(rows, classes)`` (a 1-D output is one column).
    ``softmax`` subtracts the row maximum before ``exp`` (no overflow);
    ``sigmoid`` uses ``exp(-|x|)`` on both sides of zero. A single column is
    the positive class's score and is widened to ``[1 - p, p]`` so that score
    column ``j`` is always class ``j``. The prediction is the first of the
    highest scores, or for binary models with a ``threshold`` the positive
    class (index 1) when its score is ``>= threshold`` (as scikit-learn's
    ``FixedThresholdClassifier``); a single column without a threshold uses
    0.5. Top-k lists the ``k`` best classes per row, ties in class order.

Detection (as ``torchvision.ops.batched_nms``)
    Boxes are decoded to ``xyxy``; boxes scoring below ``score_threshold``
    are dropped; greedy NMS visits boxes by descending score (ties: lower
    index first) and drops every later box of the same class whose IoU with
    a kept box is *greater* than ``iou_threshold``; the kept boxes come out by
    descending score, at most ``max_detections``. IoU is
    ``inter / (area_a + area_b - inter)`` with ``area = (x2 - x1) * (y2 - y1)``
    (no +1), and 0 where that union is not positive (degenerate boxes never
    suppress anything). With ``(N, M, C)`` class scores each box takes its
    best class (one detection per box, not one per class).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workers.engine.arrays import Array
from workers.engine.errors import EngineError
from workers.engine.processing.spec import DetectionSpec, OutputSpec

__all__ = [
    "Detections",
    "PostResult",
    "TopK",
    "apply_output",
    "box_iou",
    "decode_boxes",
    "nms",
    "sigmoid",
    "softmax",
    "top_k",
]


@dataclass(frozen=True)
class TopK:
    """The ``k`` best classes per row: ``(rows, k)`` indices, scores and (with a label map) labels."""

    indices: Array
    scores: Array
    labels: Array | None = None


@dataclass(frozen=True)
class Detections:
    """One image's kept boxes, by descending score.

    ``boxes`` is ``(k, 4)`` float64 ``xyxy``; ``scores`` ``(k,)`` float64;
    ``classes`` ``(k,)`` int64; ``labels`` ``(k,)`` object array of str
    when the spec has a label map.
    """

    boxes: Array
    scores: Array
    classes: Array
    labels: Array | None = None


@dataclass(frozen=True)
class PostResult:
    """A batch of model outputs after :func:`apply_output`.

    Parameters
    ----------
    scores:
        ``(rows, classes)`` float64 class scores after the activation.
    classes:
        ``(rows,)`` int64 predicted class indices.
    labels:
        ``(rows,)`` predicted labels (object array of str) with a label map.
    class_labels:
        Label of each score column, with a label map.
    top_k:
        The best classes per row, when the spec asks for them.
    detections:
        One :class:`Detections` per image, for detection specs (the fields
        above are then ``None``).
    """

    scores: Array | None = None
    classes: Array | None = None
    labels: Array | None = None
    class_labels: tuple[str, ...] | None = None
    top_k: TopK | None = None
    detections: tuple[Detections, ...] | None = None


def softmax(x: Array, axis: int = -1) -> Array:
    """Numerically stable softmax in float64."""
    z = np.asarray(x, dtype=np.float64)
    z = z - np.max(z, axis=axis, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / np.sum(e, axis=axis, keepdims=True))


def sigmoid(x: Array) -> Array:
    """Logistic function in float64, without overflow for large ``|x|``."""
    z = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def top_k(scores: Array, k: int) -> tuple[Array, Array]:
    """Indices and values of the ``k`` highest scores per row; equal scores keep class order."""
    k = min(k, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order.astype(np.int64), np.take_along_axis(scores, order, axis=1)


def decode_boxes(boxes: Array, fmt: str) -> Array:
    """Convert ``(..., 4)`` boxes from ``"xyxy"``, ``"cxcywh"`` or ``"xywh"`` to float64 ``xyxy``."""
    b = np.asarray(boxes, dtype=np.float64)
    if fmt == "xyxy":
        return b.copy()
    if fmt == "cxcywh":
        half = b[..., 2:] / 2.0
        return np.concatenate([b[..., :2] - half, b[..., :2] + half], axis=-1)
    if fmt == "xywh":
        return np.concatenate([b[..., :2], b[..., :2] + b[..., 2:]], axis=-1)
    raise ValueError(f"unknown box format {fmt!r}")


def box_iou(a: Array, b: Array) -> Array:
    """Pairwise IoU of ``(n, 4)`` and ``(m, 4)`` ``xyxy`` boxes, ``(n, m)``; 0 where the union is not positive."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def nms(boxes: Array, scores: Array, iou_threshold: float, classes: Array | None = None) -> Array:
    """Greedy non-maximum suppression; returns kept indices by descending score (ties: lower index first).

    With ``classes``, boxes only suppress boxes of their own class
    (``torchvision.ops.batched_nms``); without, any box (``torchvision.ops.nms``).
    """
    order = np.lexsort((np.arange(len(scores)), -np.asarray(scores, dtype=np.float64)))
    if classes is None:
        return _greedy(np.asarray(boxes, dtype=np.float64), order, iou_threshold)
    kept = [
        _greedy(np.asarray(boxes, dtype=np.float64), order[classes[order] == c], iou_threshold)
        for c in np.unique(classes)
    ]
    merged = np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)
    # Positions in ``order`` sort the union by score, ties by index, as one pass would.
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return merged[np.argsort(rank[merged], kind="stable")]


def _greedy(boxes: Array, order: Array, threshold: float) -> Array:
    alive = order
    keep: list[int] = []
    while alive.size:
        best = alive[0]
        keep.append(int(best))
        rest = alive[1:]
        if rest.size == 0:
            break
        iou = box_iou(boxes[best : best + 1], boxes[rest])[0]
        alive = rest[~(iou > threshold)]
    return np.asarray(keep, dtype=np.int64)


def apply_output(outputs: dict[str, Array], spec: OutputSpec) -> PostResult:
    """Turn one batch of raw model outputs into scores, predictions, top-k or detections.

    Parameters
    ----------
    outputs:
        Output name -> array, as a backend's ``predict`` returns them.
    spec:
        The output part of the processing spec; see the module docstring.

    Raises
    ------
    EngineError
        (permanent) when the named outputs are missing or have the wrong
        shape, a label map does not cover the classes, a threshold is set for
        more than two classes, or the scores are NaN.
    """
    if spec.detection is not None:
        return PostResult(detections=_detect(outputs, spec, spec.detection))
    name = _pick(outputs, spec.output_name)
    raw = np.asarray(outputs[name])
    if raw.ndim == 1:
        raw = raw[:, None]
    if raw.ndim != 2 or raw.shape[1] == 0 or raw.dtype.kind not in "fiub":
        raise EngineError(
            f"output {name!r} is {raw.dtype} {list(raw.shape)}; classification post-processing needs numbers "
            "shaped (rows, classes)"
        )
    if spec.activation == "softmax" and raw.shape[1] == 1:
        raise EngineError(f"output {name!r} has a single column, where softmax is always 1; use sigmoid")
    scores = _activate(raw, spec.activation)
    _check_finite(scores, name)
    single = scores.shape[1] == 1
    if single:
        scores = np.column_stack([1.0 - scores[:, 0], scores[:, 0]])
    if spec.threshold is not None or single:
        if scores.shape[1] != 2:
            raise EngineError(
                f"output.threshold applies to binary models (one or two score columns); output {name!r} has "
                f"{scores.shape[1]} columns"
            )
        threshold = 0.5 if spec.threshold is None else spec.threshold
        classes = (scores[:, 1] >= threshold).astype(np.int64)
    else:
        classes = np.argmax(scores, axis=1).astype(np.int64)
    class_labels = None
    labels = None
    if spec.labels is not None:
        class_labels = tuple(spec.label_list(scores.shape[1], f"output {name!r}"))
        labels = np.asarray(class_labels, dtype=object)[classes]
    best = None
    if spec.top_k is not None:
        indices, values = top_k(scores, spec.top_k)
        names = np.asarray(class_labels, dtype=object)[indices] if class_labels is not None else None
        best = TopK(indices, values, names)
    return PostResult(scores, classes, labels, class_labels, best)


def _activate(x: Array, activation: str) -> Array:
    if activation == "softmax":
        return softmax(x, axis=-1)
    if activation == "sigmoid":
        return sigmoid(x)
    return np.asarray(x, dtype=np.float64)


def _check_finite(values: Array, name: str) -> None:
    bad = np.isnan(values)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise EngineError(f"output {name!r} holds NaN scores (first in batch row {row + 1})")


def _pick(outputs: dict[str, Array], name: str | None) -> str:
    if name is not None:
        if name not in outputs:
            raise EngineError(f"the model has no output {name!r}; its outputs are: {', '.join(outputs)}")
        return name
    if len(outputs) == 1:
        return next(iter(outputs))
    floats = [k for k, v in outputs.items() if np.asarray(v).dtype.kind == "f" and np.asarray(v).ndim == 2]
    if len(floats) == 1:
        return floats[0]
    raise EngineError(
        f"the model has several outputs ({', '.join(outputs)}); set output.output_name in the processing spec"
    )


def _detect(outputs: dict[str, Array], spec: OutputSpec, det: DetectionSpec) -> tuple[Detections, ...]:
    boxes, scores, classes = _detection_arrays(outputs, det)
    if scores.ndim == 3:
        if spec.activation == "softmax":
            scores = softmax(scores, axis=-1)
        elif spec.activation == "sigmoid":
            scores = sigmoid(scores)
        classes = np.argmax(scores, axis=-1).astype(np.int64)
        scores = np.take_along_axis(scores, classes[..., None], axis=-1)[..., 0]
    else:
        if spec.activation == "softmax":
            raise EngineError(
                f"softmax needs per-class scores shaped (images, boxes, classes); output {det.scores_output!r} "
                f"is {list(scores.shape)}"
            )
        scores = _activate(scores, spec.activation)
    xyxy = decode_boxes(boxes, det.format)
    mapping = dict(spec.labels) if spec.labels is not None else None
    result = []
    for b, s, c in zip(xyxy, scores, classes if classes is not None else np.zeros(scores.shape, np.int64), strict=True):
        passed = np.flatnonzero(s >= det.score_threshold)
        keep = passed[nms(b[passed], s[passed], det.iou_threshold, None if det.class_agnostic else c[passed])]
        keep = keep[: det.max_detections]
        result.append(Detections(b[keep], s[keep], c[keep].astype(np.int64), _box_labels(c[keep], mapping)))
    return tuple(result)


def _box_labels(classes: Array, mapping: dict[int, str] | None) -> Array | None:
    if mapping is None:
        return None
    missing = sorted({int(c) for c in classes} - set(mapping))
    if missing:
        raise EngineError(f"output.labels has no label for detected class index {missing[0]}")
    return np.asarray([mapping[int(c)] for c in classes], dtype=object)


def _detection_arrays(outputs: dict[str, Array], det: DetectionSpec) -> tuple[Array, Array, Array | None]:
    for name in (det.boxes_output, det.scores_output, det.classes_output):
        if name is not None and name not in outputs:
            raise EngineError(f"the model has no output {name!r}; its outputs are: {', '.join(outputs)}")
    boxes = np.asarray(outputs[det.boxes_output])
    scores = np.asarray(outputs[det.scores_output], dtype=np.float64)
    classes = np.asarray(outputs[det.classes_output]) if det.classes_output is not None else None
    if boxes.ndim == 2:  # one image without a batch axis
        boxes, scores = boxes[None], scores[None]
        classes = classes[None] if classes is not None else None
    shape = f"boxes {list(boxes.shape)}, scores {list(scores.shape)}"
    if boxes.ndim != 3 or boxes.shape[2] != 4 or scores.shape[:2] != boxes.shape[:2] or scores.ndim not in (2, 3):
        raise EngineError(
            f"detection outputs must be boxes (images, boxes, 4) and scores (images, boxes[, classes]); got {shape}"
        )
    if scores.ndim == 3 and classes is not None:
        raise EngineError("detection.classes_output is set but the scores already have a class axis; leave one out")
    if classes is not None:
        if classes.shape != scores.shape:
            raise EngineError(f"detection classes {list(classes.shape)} must match the scores {list(scores.shape)}")
        if classes.dtype.kind == "f" and not np.all(classes == np.round(classes)):
            raise EngineError(f"detection output {det.classes_output!r} holds class indices that are not integers")
        classes = classes.astype(np.int64)
    return boxes, scores, classes
