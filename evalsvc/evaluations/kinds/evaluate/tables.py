"""The evaluation's tables, computed once from the stored result for the run page and the report."""

from __future__ import annotations

from typing import Any

from ..base import Rows

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
    if method:
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
    }


def _task(result: dict[str, Any]) -> str:
    return result.get("task") if result.get("task") in METRIC_LABELS else "classification"
