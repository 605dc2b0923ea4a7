"""The evaluation job's section: metrics, per-class table, confusion matrix."""

from __future__ import annotations

from ..base import JobContext, Section, Table
from .tables import breakdown_tables, method_notes, metric_rows, per_class_rows

#: Where the run read which score column is which class, in words for the report.
CLASS_ORDER = {
    "parameter": "as listed in the job's class_labels parameter, which names the class of each score column.",
    "model": "as the model file declares them (its ONNX-ML class labels), each score column read as its class.",
    "processing": "as the model version's processing spec names them (its label map).",
    "data": "the labels found in the label column and the predictions, sorted; the model declares no class "
    "names, so score column k is read as the k-th of them.",
}


def evaluate_section(ctx: JobContext) -> Section:
    result, params = ctx.result, ctx.params
    task = result.get("task") or params.get("task", "")
    metrics = result.get("metrics") or {}
    features = result.get("feature_columns") or params.get("feature_columns") or []
    method = (
        f"Every row of {ctx.dataset or 'the data set'} ({result.get('rows', '?')} rows) was run through the model "
        f"with {params.get('backend', 'onnxruntime')} on {params.get('device', 'cpu')}"
        f"{' at ' + params['precision'] if params.get('precision') else ''}, "
        f"in batches of {result.get('batch_size', params.get('batch_size'))}; the predictions were compared with "
        f"the label column {result.get('label_column') or params.get('label_column')!r} as a {task} task, "
        f"using {len(features)} feature column{'s' if len(features) != 1 else ''}."
    )
    if task == "classification":
        average = metrics.get("average")
        if average == "binary":
            method += f" Precision, recall, F1 and ROC AUC refer to the positive class {metrics.get('positive_label')}."
        elif average:
            method += f" Precision, recall and F1 are {average}-averaged over the classes; ROC AUC is one-vs-rest."
    method = " ".join([method, *method_notes(result)])
    tables: list[Table] = [
        {
            "title": "Metrics",
            "columns": ["Metric", "Value", "95 % interval", "Interval", "Rows", "Caveat"],
            "rows": [
                [m["label"], m["value"], m["interval"], m["method"] or "—", m["n"], m["flag"] or ""]
                for m in metric_rows(result, task)
            ],
        }
    ]
    notes: list[str] = []
    flags = metrics.get("flags") or {}
    shown = {m["key"] for m in metric_rows(result, task)}
    notes += [f"{key}: {text}" for key, text in flags.items() if key not in shown]
    per_class = per_class_rows(result)
    if per_class:
        tables.append(
            {
                "title": "Per class",
                "columns": [
                    "Class",
                    "Precision",
                    "95 % interval",
                    "Recall",
                    "95 % interval",
                    "F1",
                    "95 % interval",
                    "Support",
                ],
                "rows": [
                    [
                        row["label"],
                        row["precision"],
                        row["precision_interval"],
                        row["recall"],
                        row["recall_interval"],
                        row["f1"],
                        row["f1_interval"],
                        row["support"],
                    ]
                    for row in per_class
                ],
            }
        )
    labels = result.get("labels") or []
    matrix = result.get("confusion_matrix") or []
    if matrix:
        tables.append(
            {
                "title": "Confusion matrix (rows: true label, columns: predicted label)",
                "columns": ["True \\ predicted", *[str(label) for label in labels]],
                "rows": [[str(labels[i]) if i < len(labels) else i, *row] for i, row in enumerate(matrix)],
            }
        )
    tables += breakdown_tables(result)
    source = result.get("labels_source")
    if source:
        notes.append(
            "Classes (the order of the confusion matrix and of the per-class tables): "
            + CLASS_ORDER.get(str(source), f"as recorded by the job ({source}).")
        )
    if task == "regression" and result.get("residuals"):
        plotted = len((result.get("residuals") or {}).get("y_true", []))
        notes.append(f"The residual plots show {plotted} of {result.get('rows', '?')} rows, evenly spaced in the file.")
    if features:
        notes.append("Feature columns, in model input order: " + ", ".join(str(f) for f in features) + ".")
    notes += [str(w) for w in result.get("warnings") or []]
    return Section(method=method, tables=tables, notes=notes)
