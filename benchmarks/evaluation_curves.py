"""What an evaluation's curves, calibration and threshold sweep cost, against scikit-learn computing the same.

For one synthetic binary problem of N rows (scores drawn per class, 30 %
positive) the same arrays are handed to:

* evalsvc: ``classification_breakdown`` (ROC and precision-recall curves
  with their areas, the threshold sweep with its operating point, the
  reliability diagram with Brier score and ECE), and, with a 5-value slice
  column, the same plus metrics per slice;
* scikit-learn: ``roc_curve`` + ``roc_auc_score`` + ``precision_recall_curve``
  + ``average_precision_score`` + ``calibration_curve`` + ``brier_score_loss``
  (no sweep: precision/recall/F1/FPR at every threshold would be a loop over
  them), and the same per slice value.

The two are timed alternately, several rounds each; the ratio of medians is
printed last. Run ``python benchmarks/evaluation_curves.py`` (``--rows``,
``--rounds``; ``--record`` appends the table to benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import sklearn
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from workers.engine.evaluate.breakdown import classification_breakdown  # noqa: E402

RESULTS = ROOT / "benchmarks" / "RESULTS.md"


def _data(rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = (rng.random(rows) < 0.3).astype(np.int64)
    p = np.clip(rng.normal(0.4 + 0.25 * y, 0.2), 0.0, 1.0)
    proba = np.column_stack([1.0 - p, p])
    return y, (p >= 0.5).astype(np.int64), proba, rng.integers(0, 5, rows)


def _sklearn(y: np.ndarray, p: np.ndarray) -> None:
    skm.roc_curve(y, p, drop_intermediate=False)
    skm.roc_auc_score(y, p)
    skm.precision_recall_curve(y, p)
    skm.average_precision_score(y, p)
    calibration_curve(y, p, n_bins=10)
    skm.brier_score_loss(y, p)


def _time(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    y, pred, proba, slice_values = _data(args.rows)
    p = proba[:, 1]

    def ours() -> None:
        classification_breakdown(y, pred, proba, [0, 1], 1)

    def ours_sliced() -> None:
        classification_breakdown(y, pred, proba, [0, 1], 1, slices={"s": slice_values})

    def theirs() -> None:
        _sklearn(y, p)

    def theirs_sliced() -> None:
        _sklearn(y, p)
        for value in range(5):
            mask = slice_values == value
            skm.accuracy_score(y[mask], pred[mask])
            skm.precision_recall_fscore_support(y[mask], pred[mask], average="binary", zero_division=0)
            skm.roc_auc_score(y[mask], p[mask])

    cases = [("curves, sweep, calibration", ours, theirs), ("… and 5 slices", ours_sliced, theirs_sliced)]
    rows = []
    for name, a, b in cases:
        a(), b()  # warm
        times_a, times_b = [], []
        for i in range(args.rounds):
            first, second = (a, b) if i % 2 == 0 else (b, a)
            t1, t2 = _time(first), _time(second)
            times_a.append(t1 if first is a else t2)
            times_b.append(t2 if first is a else t1)
        rows.append((name, statistics.median(times_a), statistics.median(times_b)))

    load = os.getloadavg()
    header = [
        f"## Evaluation curves vs scikit-learn — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"- Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, "
        f"{platform.system()} {platform.machine()}; load average after {tuple(round(v, 2) for v in load)}",
        f"- Versions: python {platform.python_version()}, numpy {np.__version__}, scikit-learn {sklearn.__version__}",
        f"- Method: `benchmarks/evaluation_curves.py`; {args.rows:,} rows, binary, {args.rounds} alternating rounds; "
        "medians. evalsvc also computes the threshold sweep, which scikit-learn has no call for (not counted on "
        "its side).",
        "",
        "| what | evalsvc s | scikit-learn s | evalsvc / scikit-learn |",
        "|---|---:|---:|---:|",
    ]
    table = [f"| {name} | {a:.3f} | {b:.3f} | {a / b:.2f}× |" for name, a, b in rows]
    text = "\n".join(header + table) + "\n"
    print(text)
    if args.record:
        with RESULTS.open("a", encoding="utf-8") as out:
            out.write("\n" + text)
    print("ratio (evalsvc / scikit-learn): " + ", ".join(f"{name}: {a / b:.2f}×" for name, a, b in rows))


if __name__ == "__main__":
    main()
