"""The evaluation's tables, computed once from the stored result for the run page and the report."""

from __future__ import annotations

from typing import Any

from ..base import Rows, Table

#: Headline metrics per task, in the order a reviewer reads them.
METRIC_LABELS = {
    "classification": [
        ("accuracy", "Accuracy"),
        ("precision", "Precision"),
        ("recall", "Recall"),
        ("f1", "F1"),
        ("roc_auc", "ROC AUC"),
    ],
    "regression": [("mae", "MAE"), ("rmse", "RMSE"), ("r2", "R²")],
}


def interval_text(record: dict[str, Any] | None) -> str:
    """``[0.6259, 0.8570]`` for a stored interval; an em dash without one."""
    if not record or record.get("low") is None:
        return "—"
    return f"[{record['low']:.4f}, {record['high']:.4f}]"


def metric_rows(result: dict[str, Any], task: str | None = None) -> Rows:
    """The headline metrics present in the result: key, label, value, 95 % interval, method, rows, flag."""
    metrics = result.get("metrics") or {}
    intervals = metrics.get("intervals") or {}
    flags = metrics.get("flags") or {}
    names = [*METRIC_LABELS.get(task or result.get("task") or "", [])]
    names += [(key, f"Top-{key.split('_')[1]} accuracy") for key in metrics if key.startswith("top_")]
    rows = []
    for key, label in names:
        if key not in metrics:
            continue
        interval = intervals.get(key) or {}
        rows.append(
            {
                "key": key,
                "label": label,
                "value": metrics.get(key),
                "low": interval.get("low"),
                "high": interval.get("high"),
                "interval": interval_text(interval),
                "method": interval.get("method"),
                "n": interval.get("n", metrics.get("support")),
                "flag": flags.get(key),
            }
        )
    return rows


def per_class_rows(result: dict[str, Any]) -> Rows:
    intervals = (result.get("metrics") or {}).get("per_class_intervals") or {}
    return [
        {"label": label, "precision": m.get("precision"), "recall": m.get("recall"), "f1": m.get("f1"),
         "support": m.get("support"),
         "precision_interval": interval_text((intervals.get(label) or {}).get("precision")),
         "recall_interval": interval_text((intervals.get(label) or {}).get("recall")),
         "f1_interval": interval_text((intervals.get(label) or {}).get("f1"))}
        for label, m in (result.get("per_class") or {}).items()
    ]  # fmt: skip


def column_mapping_note(result: dict[str, Any]) -> str | None:
    """How the data set's columns were matched to the model's features, in one sentence."""
    mapping = result.get("column_mapping") or {}
    if not mapping:
        return None
    text = f"Columns matched {mapping.get('method')}"
    if mapping.get("note"):
        text += f": {mapping['note']}"
    ignored = mapping.get("ignored_columns") or []
    if ignored:
        text += f". Columns the model does not take, ignored: {', '.join(str(c) for c in ignored)}"
    return text + "."


def method_notes(result: dict[str, Any]) -> list[str]:
    """How every number was defined, so a validator can recompute it with scikit-learn, scipy or numpy."""
    metrics = result.get("metrics") or {}
    method = metrics.get("interval_method") or {}
    notes: list[str] = []
    mapping = column_mapping_note(result)
    if mapping:
        notes.append(mapping)
    if result.get("task") == "classification":
        if metrics.get("average") == "macro":
            notes.append(
                "Precision, recall and F1 are macro averages over the classes present in the labels or the "
                "predictions (scikit-learn's average='macro'); a class's 0/0 precision or recall counts as 0 "
                "(zero_division=0). ROC AUC is the unweighted mean of the one-vs-rest AUCs "
                "(roc_auc_score(multi_class='ovr'))."
            )
        else:
            notes.append(
                "Precision, recall and F1 are those of the positive class (scikit-learn's average='binary'); "
                "ROC AUC is roc_auc_score on the positive class's score, ties counting one half."
            )
    elif result.get("task") == "regression":
        notes.append(
            "MAE and RMSE are the mean absolute and root mean squared errors; R² = 1 − SS_res/SS_tot, left "
            "undefined when the target is constant (scikit-learn's r2_score with force_finite=False)."
        )
    if method.get("analytic"):
        notes.append(_analytic_note(method, result.get("task")))
        notes += [str(note) for note in method.get("notes") or []]
    elif method:
        boot = method.get("bootstrap") or {}
        confidence = round(100 * float(method.get("confidence", 0.95)))
        text = (
            f"Intervals are two-sided {confidence} %: Wilson score intervals for proportions (accuracy, the "
            "precision and recall of a single class, top-k accuracy), n being the rows (or, for precision, the "
            "predictions) they rest on; percentile bootstrap intervals (numpy.percentile, linear) for F1, macro "
            f"averages, ROC AUC and regression metrics, from {boot.get('resamples')} resamples with seed "
            f"{boot.get('seed')} drawn by numpy.random.default_rng(seed)"
        )
        if boot.get("stratified_by"):
            text += (
                ", each resample drawing rng.integers(0, n_c, n_c) among each true class's rows in label order "
                "(stratified: class counts kept)"
            )
        else:
            text += ", each resample drawing rng.integers(0, n, n) rows"
        notes.append(text + ".")
        notes += [str(note) for note in method.get("notes") or []]
    return notes


def _num(value: Any, digits: int = 4) -> Any:
    return round(value, digits) if isinstance(value, float) else ("—" if value is None else value)


def curve_table(result: dict[str, Any]) -> Table | None:
    """Areas under each stored curve: ROC AUC and average precision, per class (binary: the positive class)."""
    curves = result.get("curves") or {}
    classes = curves.get("classes") or []
    if not classes:
        return None
    table: Table = {
        "title": "Curves",
        "columns": ["Class", "ROC AUC", "Average precision", "Positives", "Negatives", "Curve points"],
        "rows": [
            [
                str(c.get("label")),
                _num((c.get("roc") or {}).get("auc")),
                _num((c.get("pr") or {}).get("average_precision")),
                c.get("positives"),
                c.get("negatives"),
                c.get("points"),
            ]
            for c in classes
        ],
        "note": (
            "Areas from every row's score (scikit-learn's roc_auc_score and average_precision_score); "
            "the figures draw at most 200 points of each curve."
        ),
    }
    if curves.get("average") == "ovr":
        table["note"] += " One-vs-rest: each class against all others."
    if curves.get("omitted"):
        table["note"] += f" Not drawn (the {len(classes)} most frequent classes are): " + ", ".join(
            str(c) for c in curves["omitted"]
        )
    return table


def calibration_table(result: dict[str, Any]) -> Table | None:
    """The reliability diagram's bins, with the Brier score and expected calibration error in the note."""
    cal = result.get("calibration") or {}
    if not cal:
        return None
    what = "positive class's score" if cal.get("of") == "positive class" else "top label's probability"
    observed = "Fraction positive" if cal.get("of") == "positive class" else "Fraction correct"
    return {
        "title": f"Calibration: Brier score {cal.get('brier', 0):.4f}, ECE {cal.get('ece', 0):.4f}",
        "columns": ["Bin", "Rows", "Mean predicted", observed],
        "rows": [
            [f"[{lo:.1f}, {hi:.1f}{']' if hi >= 1.0 else ')'}", n, _num(pred), _num(obs)]
            for lo, hi, n, pred, obs in zip(
                cal.get("bin_low", []),
                cal.get("bin_high", []),
                cal.get("counts", []),
                cal.get("mean_predicted", []),
                cal.get("fraction_positive", []),
                strict=False,
            )
        ],
        "note": (
            f"Reliability of the {what} over {cal.get('bins')} equal-width bins (empty bins left out), as "
            "sklearn.calibration.calibration_curve(strategy='uniform'); Brier score is the mean squared "
            "difference between score and outcome"
            + (" summed over the classes" if cal.get("of") == "top label" else "")
            + "; ECE is the row-weighted mean of |observed − predicted| over the bins."
        ),
    }


def threshold_table(result: dict[str, Any]) -> Table | None:
    """The operating point and the best-F1 threshold of a binary classifier."""
    sweep = result.get("threshold_sweep") or {}
    if not sweep:
        return None
    operating = sweep.get("operating") or {}
    best = sweep.get("best_f1") or {}
    threshold = operating.get("threshold")
    return {
        "title": f"Threshold (positive class {sweep.get('positive_label')})",
        "columns": ["Point", "Threshold", "Precision", "Recall", "F1", "False positive rate"],
        "rows": [
            [
                "Operating (the model's predictions)",
                "—" if threshold is None else threshold,
                _num(operating.get("precision")),
                _num(operating.get("recall")),
                _num(operating.get("f1")),
                _num(operating.get("fpr")),
            ],
            [
                "Best F1 on this data",
                _num(best.get("threshold"), 6),
                _num(best.get("precision")),
                _num(best.get("recall")),
                _num(best.get("f1")),
                _num(best.get("fpr")),
            ],
        ],
        "note": (
            f"Operating threshold: {operating.get('source', 'unknown')}. A row is predicted positive when its score "
            f"is ≥ the threshold; the sweep covers {sweep.get('points')} distinct thresholds. The best-F1 threshold "
            "is chosen on this very data, so its F1 is optimistic."
        ),
    }


#: Slice table columns per task: (key, heading).
_SLICE_COLUMNS = {
    "binary": [("accuracy", "Accuracy"), ("precision", "Precision"), ("recall", "Recall"), ("f1", "F1"),
               ("roc_auc", "ROC AUC")],
    "multiclass": [("accuracy", "Accuracy"), ("macro_f1", "Macro F1")],
    "regression": [("mae", "MAE"), ("rmse", "RMSE"), ("r2", "R²")],
}  # fmt: skip


def slice_tables(result: dict[str, Any]) -> list[Table]:
    """One table per slice column: rows, the task's metrics, and a flag on small slices."""
    if result.get("task") == "regression":
        shape = "regression"
    else:
        shape = "binary" if (result.get("metrics") or {}).get("average") == "binary" else "multiclass"
    columns = _SLICE_COLUMNS[shape]
    tables: list[Table] = []
    for sliced in result.get("slices") or []:
        rows = []
        for item in sliced.get("slices") or []:
            cells = [item.get("slice"), item.get("rows")]
            cells += [_num(item.get(key)) for key, _ in columns]
            cells.append(f"⚠ fewer than {sliced.get('min_rows', 30)} rows" if item.get("small") else "")
            rows.append(cells)
        how = (
            "Numeric column binned at its quartiles (numpy.quantile); bins [low, high), the last closed."
            if sliced.get("binned") == "quantiles"
            else "One slice per value (the most frequent 19 kept, the rest as (other))."
        )
        tables.append(
            {
                "title": f"By {sliced.get('column')}",
                "columns": ["Slice", "Rows", *[label for _, label in columns], "Caveat"],
                "rows": rows,
                "note": how + " A small slice's numbers rest on too few rows to compare with the others.",
            }
        )
    return tables


def breakdown_tables(result: dict[str, Any]) -> list[Table]:
    """Curves, calibration, threshold and slice tables, those the result has, in reading order."""
    found = [curve_table(result), calibration_table(result), threshold_table(result)]
    return [t for t in found if t is not None] + slice_tables(result)


def _analytic_note(method: dict[str, Any], task: Any) -> str:
    confidence = round(100 * float(method.get("confidence", 0.95)))
    above = (method.get("analytic") or {}).get("above_rows")
    text = (
        f"Intervals are two-sided {confidence} %: Wilson score intervals for proportions (accuracy, the precision "
        "and recall of a single class, top-k accuracy), n being the rows (or, for precision, the predictions) they "
        f"rest on. On more than {above:,} rows the other intervals are analytic, estimate ± 1.96 standard errors "
        "clipped to the metric's range: "
    )
    if task == "regression":
        return text + (
            "MAE ± 1.96·sd(|error|)/√n; RMSE from the interval of the mean squared error, mean(error²) ± "
            "1.96·sd(error²)/√n, square-rooted at both ends; R² by the delta method, its standard error that of "
            "the influence values −(error² − MSE)/Var(y) + MSE·((y − ȳ)² − Var(y))/Var(y)² over √n."
        )
    return text + (
        "ROC AUC by DeLong's method (DeLong, DeLong & Clarke-Pearson 1988, computed in O(n log n) as Sun & Xu 2014; "
        "for several classes the one-vs-rest AUCs are averaged row by row and the variance taken within each true "
        "class); F1, per-class F1 and macro precision, recall and F1 by the delta method on the confusion matrix, "
        "with the true class counts held fixed as in a bootstrap stratified by true class."
    )


def page_context(result: dict[str, Any]) -> dict[str, Any]:
    metrics = result.get("metrics") or {}
    flags = metrics.get("flags") or {}
    return {
        "metrics": metric_rows(result),
        "averaging": metrics.get("average"),
        "positive_label": metrics.get("positive_label"),
        "per_class": per_class_rows(result),
        "absent_classes": metrics.get("absent_classes") or [],
        "other_flags": {k: v for k, v in flags.items() if k not in {m for m, _ in METRIC_LABELS[_task(result)]}},
        "method_notes": method_notes(result),
        "column_mapping": result.get("column_mapping") or {},
        "breakdown": breakdown_tables(result),
    }


def _task(result: dict[str, Any]) -> str:
    task = result.get("task")
    return task if isinstance(task, str) and task in METRIC_LABELS else "classification"
