"""The parity job's tables, computed once from the stored result for the run page and the report."""

from __future__ import annotations

from typing import Any

from ..base import Rows
from ..common import target_name, worst_rows


def parity_rows(result: dict[str, Any]) -> Rows:
    """One row per candidate and output; a candidate that was not compared is one row with its error."""
    rows: Rows = []
    for c in result.get("candidates") or []:
        target = c.get("target") or {}
        base = {"candidate": target_name(target), "provider": (c.get("backend") or {}).get("provider"),
                "model": model_name(target), "status": c.get("status"), "error": c.get("error")}  # fmt: skip
        if c.get("status") != "ok":
            rows.append(base)
            continue
        for o in c.get("outputs") or []:
            rows.append(
                {**base, "output": o.get("name"), "max_abs": o.get("max_abs"), "mean_abs": o.get("mean_abs"),
                 "max_rel": o.get("max_rel"), "label_agreement": o.get("label_agreement"),
                 "disagreeing_rows": o.get("disagreeing_rows")}
            )  # fmt: skip
    return rows


def model_name(target: dict[str, Any]) -> str | None:
    """The model version and format a target ran ("digits-cnn v2 (torchscript)"); None for older results."""
    if not target.get("model"):
        return None
    return f"{target['model']} ({target.get('format')})"


def parity_worst_rows(result: dict[str, Any]) -> Rows:
    """Per compared candidate with disagreeing rows: the rows that differ most."""
    return [
        {"candidate": target_name(c.get("target") or {}), "target": c.get("target") or {},
         "rows": worst_rows(c["worst_rows"])}
        for c in result.get("candidates") or []
        if c.get("status") == "ok" and c.get("worst_rows")
    ]  # fmt: skip


def page_context(result: dict[str, Any]) -> dict[str, Any]:
    return {"parity_rows": parity_rows(result), "worst": parity_worst_rows(result)}
