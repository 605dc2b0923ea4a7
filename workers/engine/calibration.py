"""Which rows calibrate a static INT8 quantizer and which rows the variants are then compared on.

Calibrating on the rows a model is then scored on flatters it, and the first
rows of a file sorted by class show the quantizer some classes only. The rows
are therefore drawn by a seeded, stratified sample (by label, when there is
one) and left out of the comparison; or they come from another data set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workers.engine.arrays import Array
from workers.engine.errors import EngineError
from workers.engine.feed import read_blocks
from workers.engine.types import DatasetRef


@dataclass
class Split:
    """Row masks over the data set: ``calibration`` and ``evaluation`` never share a row."""

    calibration: Array
    evaluation: Array
    method: str
    seed: int
    classes: dict[str, int] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """What the result keeps: enough to pick the same rows again with numpy."""
        return {
            "method": self.method,
            "seed": self.seed,
            "rows": int(self.calibration.sum()),
            "indices": np.flatnonzero(self.calibration).tolist(),
            "classes": self.classes,
        }


def read_labels(data: DatasetRef, label: str) -> Array:
    """The label column of every row, read once (an image archive's labels are its folder names)."""
    parts = [b.columns[label] for b in read_blocks(data, [label], {label: "label"})]
    if not parts:
        raise EngineError("the data set has no rows")
    return np.concatenate([p.astype(object) for p in parts])


def stratified_sample(labels: Array, rows: int, seed: int) -> tuple[Array, dict[str, int]]:
    """A boolean mask of ``rows`` rows drawn per class in proportion to its size (largest remainders).

    Every class gets at least one row while ``rows`` allows it, and no class
    gives away its last row, so every class is also left for evaluation.
    """
    n = len(labels)
    keys = np.array([str(v) for v in labels], dtype=object)
    classes, inverse = np.unique(keys, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(classes))
    room = np.maximum(counts - 1, 0)  # each class keeps a row for evaluation
    rows = min(rows, int(room.sum()))
    exact = rows * counts / n
    take = np.minimum(np.floor(exact).astype(int), room)
    if rows >= len(classes):
        take = np.maximum(take, np.minimum(1, room))
    # Hand out what is left by largest remainder; take back from the largest shares if over.
    order = np.argsort(-(exact - np.floor(exact)), kind="stable")
    while take.sum() < rows:
        for i in order:
            if take.sum() >= rows:
                break
            if take[i] < room[i]:
                take[i] += 1
    while take.sum() > rows:  # the one-per-class floor overshot: take back from the largest shares
        take[int(np.argmax(np.where(take > 1, take, -1)))] -= 1
    rng = np.random.default_rng(seed)
    mask = np.zeros(n, dtype=bool)
    for index, count in enumerate(take):
        if count:
            members = np.flatnonzero(inverse == index)
            mask[rng.choice(members, size=int(count), replace=False)] = True
    return mask, {str(c): int(t) for c, t in zip(classes, take, strict=True)}


def random_sample(n: int, rows: int, seed: int) -> Array:
    """A boolean mask of ``rows`` rows drawn uniformly without replacement (data without labels)."""
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(seed).choice(n, size=min(rows, max(n - 1, 0)), replace=False)] = True
    return mask


def split_rows(data: DatasetRef, *, rows: int, seed: int, label: str | None, total: int) -> Split:
    """Calibration rows drawn from ``data`` itself; the rest is for evaluation."""
    mask: Array | None = None
    if label:
        mask, classes = stratified_sample(read_labels(data, label), rows, seed)
        method = "stratified"
        if mask.sum() < min(rows, total - 1):  # too many distinct values (a regression target): not classes
            mask = None
    if mask is None:
        mask, classes, method = random_sample(total, rows, seed), {}, "random"
    if not mask.any() or mask.all():
        raise EngineError(f"cannot hold out calibration rows from a data set of {len(mask)} rows")
    return Split(calibration=mask, evaluation=~mask, method=method, seed=seed, classes=classes)


def sample_other(data: DatasetRef, *, rows: int, seed: int, label: str | None, total: int) -> Split:
    """Calibration rows from a separate data set: all of it, or a seeded stratified sample of ``rows``."""
    if total <= rows:
        mask = np.ones(total, dtype=bool)
        classes = _tally(read_labels(data, label)) if label else {}
        method = "dataset"
    elif label:
        mask, classes = stratified_sample(read_labels(data, label), rows, seed)
        method = "dataset, stratified"
    else:
        mask, classes, method = random_sample(total, rows, seed), {}, "dataset, random"
    return Split(calibration=mask, evaluation=np.zeros(0, dtype=bool), method=method, seed=seed, classes=classes)


def _tally(labels: Array) -> dict[str, int]:
    keys, counts = np.unique(np.array([str(v) for v in labels], dtype=object), return_counts=True)
    return {str(k): int(c) for k, c in zip(keys, counts, strict=True)}


def first_rows(mask: Array, limit: int) -> Array:
    """``mask`` with only its first ``limit`` marked rows kept (a job's ``max_rows``)."""
    kept = mask.copy()
    marked = np.flatnonzero(kept)
    kept[marked[limit:]] = False
    return kept
