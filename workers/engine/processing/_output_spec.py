"""The ``output`` part of a processing spec; see :mod:`workers.engine.processing.spec` for the JSON shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workers.engine.processing._json import (
    InvalidSpec,
    child,
    describe,
    fail,
    read_bool,
    read_choice,
    read_int,
    read_list,
    read_number,
    read_object,
    read_str,
)

__all__ = ["ACTIVATIONS", "BOX_FORMATS", "DetectionSpec", "OutputSpec", "parse_output"]

ACTIVATIONS = ("none", "softmax", "sigmoid")
#: ``xyxy``: corners; ``cxcywh``: centre and size; ``xywh``: top-left corner and size (COCO).
BOX_FORMATS = ("xyxy", "cxcywh", "xywh")
MAX_TOP_K = 1000
MAX_DETECTIONS = 10000


@dataclass(frozen=True)
class DetectionSpec:
    """Object-detection outputs: which tensors hold boxes, scores and classes, and how to filter them.

    Parameters
    ----------
    boxes_output:
        Output of shape ``(N, M, 4)`` (or ``(M, 4)`` for one image) in ``format``.
    scores_output:
        ``(N, M)`` scores with ``classes_output`` giving each box's class, or
        ``(N, M, C)`` per-class scores (a box's class is its best-scoring one).
    classes_output:
        ``(N, M)`` class indices, or ``None``.
    format:
        One of :data:`BOX_FORMATS`; boxes always come out as ``xyxy``.
    score_threshold:
        Boxes scoring below it are dropped before NMS.
    iou_threshold:
        NMS drops a box whose IoU with a kept, higher-scoring box of the same
        class (any class when ``class_agnostic``) is greater than this.
    max_detections:
        Most boxes kept per image, highest scores first.
    """

    boxes_output: str
    scores_output: str
    classes_output: str | None = None
    format: str = "xyxy"
    score_threshold: float = 0.0
    iou_threshold: float = 0.5
    max_detections: int = 100
    class_agnostic: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "boxes_output": self.boxes_output,
            "scores_output": self.scores_output,
            "classes_output": self.classes_output,
            "format": self.format,
            "score_threshold": self.score_threshold,
            "iou_threshold": self.iou_threshold,
            "max_detections": self.max_detections,
            "class_agnostic": self.class_agnostic,
        }


@dataclass(frozen=True)
class OutputSpec:
    """How to read a model's raw output: activation, top-k, label map, threshold or detection.

    ``labels`` holds (class index, label) pairs in index order; a list in the
    JSON gives indices 0, 1, 2, ... and an object may skip indices.
    """

    output_name: str | None = None
    activation: str = "none"
    top_k: int | None = None
    labels: tuple[tuple[int, str], ...] | None = None
    threshold: float | None = None
    detection: DetectionSpec | None = None

    def label_list(self, count: int, what: str) -> list[str]:
        """Labels of classes ``0 .. count-1``, or :class:`InvalidSpec` if the map does not fit ``what``."""
        assert self.labels is not None
        mapping = dict(self.labels)
        if len(mapping) != count or any(i not in mapping for i in range(count)):
            raise InvalidSpec(
                f"output.labels: the label map has {len(mapping)} labels for classes "
                f"{_index_range(mapping)} but {what} has {count} class{'es' if count != 1 else ''}"
            )
        return [mapping[i] for i in range(count)]

    def to_dict(self) -> dict[str, Any]:
        labels: list[str] | dict[str, str] | None = None
        if self.labels is not None:
            dense = [i for i, _ in self.labels] == list(range(len(self.labels)))
            labels = [v for _, v in self.labels] if dense else {str(i): v for i, v in self.labels}
        return {
            "output_name": self.output_name,
            "activation": self.activation,
            "top_k": self.top_k,
            "labels": labels,
            "threshold": self.threshold,
            "detection": self.detection.to_dict() if self.detection is not None else None,
        }


def _index_range(mapping: dict[int, str]) -> str:
    return f"{min(mapping)}..{max(mapping)}" if mapping else "none"


def parse_output(value: Any, path: str) -> OutputSpec:
    """Validate the ``output`` object (see :func:`workers.engine.processing.spec.parse_processing_spec`)."""
    keys = ("output_name", "activation", "top_k", "labels", "threshold", "detection")
    obj = read_object(value, path, keys)
    activation = read_choice(obj.get("activation", "none"), child(path, "activation"), ACTIVATIONS)
    # Probabilities live in [0, 1]; a threshold on raw scores may be any number.
    unit = (0.0, 1.0) if activation != "none" else (None, None)
    output_name = obj.get("output_name")
    top_k = obj.get("top_k")
    threshold = obj.get("threshold")
    detection = None
    if obj.get("detection") is not None:
        detection = _parse_detection(obj["detection"], child(path, "detection"), unit)
        if top_k is not None:
            raise fail(child(path, "top_k"), "does not apply to detection; use detection.max_detections")
        if threshold is not None:
            raise fail(child(path, "threshold"), "does not apply to detection; use detection.score_threshold")
        if output_name is not None:
            raise fail(child(path, "output_name"), "does not apply to detection; detection names its outputs")
    return OutputSpec(
        output_name=read_str(output_name, child(path, "output_name")) if output_name is not None else None,
        activation=activation,
        top_k=read_int(top_k, child(path, "top_k"), 1, MAX_TOP_K) if top_k is not None else None,
        labels=_parse_labels(obj["labels"], child(path, "labels")) if obj.get("labels") is not None else None,
        threshold=(
            read_number(threshold, child(path, "threshold"), low=unit[0], high=unit[1])
            if threshold is not None
            else None
        ),
        detection=detection,
    )


def _parse_labels(value: Any, path: str) -> tuple[tuple[int, str], ...]:
    pairs: list[tuple[int, str]] = []
    if isinstance(value, dict):
        obj = read_object(value, path, None)
        for key, label in obj.items():
            # (the length first: int() refuses text of more than 4300 digits)
            if not (key.isascii() and key.isdigit()) or len(key) > 18 or str(int(key)) != key:
                raise fail(child(path, key), "keys must be class indices written as integers: '0', '1', ...")
            pairs.append((int(key), read_str(label, child(path, key))))
        if not pairs:
            raise fail(path, "expected at least one label, got an empty object")
        pairs.sort()
    else:
        items = read_list(value, path, min_items=1)
        pairs = [(i, read_str(v, child(path, i))) for i, v in enumerate(items)]
    seen: dict[str, int] = {}
    for index, label in pairs:
        if label in seen:
            raise fail(path, f"label {label!r} is given to classes {seen[label]} and {index}")
        seen[label] = index
    return tuple(pairs)


def _parse_detection(value: Any, path: str, unit: tuple[float | None, float | None]) -> DetectionSpec:
    keys = ("boxes_output", "scores_output", "classes_output", "format", "score_threshold", "iou_threshold")
    obj = read_object(value, path, keys + ("max_detections", "class_agnostic"), ("boxes_output", "scores_output"))
    names = {k: read_str(obj[k], child(path, k)) for k in ("boxes_output", "scores_output")}
    classes = obj.get("classes_output")
    if classes is not None:
        names["classes_output"] = read_str(classes, child(path, "classes_output"))
    if len(set(names.values())) != len(names):
        raise fail(path, f"boxes, scores and classes must be different outputs, got {describe(list(names.values()))}")
    return DetectionSpec(
        boxes_output=names["boxes_output"],
        scores_output=names["scores_output"],
        classes_output=names.get("classes_output"),
        format=read_choice(obj.get("format", "xyxy"), child(path, "format"), BOX_FORMATS),
        score_threshold=read_number(
            obj.get("score_threshold", 0.0), child(path, "score_threshold"), low=unit[0], high=unit[1]
        ),
        iou_threshold=read_number(obj.get("iou_threshold", 0.5), child(path, "iou_threshold"), low=0.0, high=1.0),
        max_detections=read_int(obj.get("max_detections", 100), child(path, "max_detections"), 1, MAX_DETECTIONS),
        class_agnostic=read_bool(obj.get("class_agnostic", False), child(path, "class_agnostic")),
    )
