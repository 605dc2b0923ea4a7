"""A check's tables about the model: metrics on labelled rows, prediction drift, attribution drift."""

from __future__ import annotations

from typing import Any

#: Metrics shown per task, in order.
METRICS = {
    "classification": (("accuracy", "Accuracy"), ("precision", "Precision"), ("recall", "Recall"), ("f1", "F1"),
                       ("roc_auc", "ROC AUC")),
    "regression": (("mae", "MAE"), ("rmse", "RMSE"), ("r2", "R²")),
}  # fmt: skip
#: Features listed in the attribution table.
TOP_FEATURES = 10


def _num(value: Any, digits: int = 4) -> Any:
    return round(value, digits) if isinstance(value, float) else value


def model_tables(result: dict[str, Any]) -> list[dict[str, Any]]:
    tables: list[dict[str, Any]] = []
    performance = result.get("performance")
    if performance:
        title = "The model on the labelled rows of the window"
        if performance.get("error"):
            tables.append({"title": title, "columns": ["error"], "rows": [[performance["error"]]]})
        else:
            metrics = performance.get("metrics") or {}
            rows = [[label, _num(metrics.get(key))] for key, label in METRICS.get(performance.get("task", ""), ())]
            rows.append(["labelled rows scored", f"{performance['rows_scored']} of {performance['rows']}"])
            tables.append({"title": title, "columns": ["metric", "value"], "rows": rows})
    prediction = result.get("prediction")
    if prediction:
        title = "Prediction drift: the predicted classes, window vs reference"
        if prediction.get("error"):
            tables.append({"title": title, "columns": ["error"], "rows": [[prediction["error"]]]})
        else:
            tables.append({
                "title": title,
                "columns": ["test", "p-value", "PSI", "Jensen–Shannon", "drift", "reference rows", "window rows", "s"],
                "rows": [[prediction.get("test"), _num(prediction.get("p_value"), 6), _num(prediction.get("psi")),
                          _num(prediction.get("jensen_shannon")), "yes" if prediction.get("drift") else "no",
                          prediction.get("reference_rows"), prediction.get("current_rows"),
                          _num(prediction.get("seconds"), 2)]],
            })  # fmt: skip
    attribution = result.get("attribution")
    if attribution:
        title = "Attribution drift: global KernelSHAP importance, window vs reference"
        if attribution.get("error"):
            tables.append({"title": title, "columns": ["error"], "rows": [[attribution["error"]]]})
        else:
            tables.append({
                "title": title,
                "columns": ["nDCG", "threshold", "drift", "rows per side", "KernelSHAP samples", "model rows", "s"],
                "rows": [[_num(attribution["ndcg"]), attribution["threshold"],
                          "yes" if attribution.get("drifted") else "no", attribution.get("current_rows"),
                          attribution.get("nsamples"), attribution.get("model_rows"),
                          _num(attribution.get("seconds"), 2)]],
            })  # fmt: skip
            tables.append({
                "title": "Attribution drift: the features whose share of the importance moved most",
                "columns": ["feature", "reference", "window", "share change", "reference rank", "window rank"],
                "rows": [[f["feature"], _num(f["reference"], 6), _num(f["current"], 6), _num(f["share_difference"]),
                          f["reference_rank"], f["current_rank"]] for f in attribution["features"][:TOP_FEATURES]],
            })  # fmt: skip
    return tables
