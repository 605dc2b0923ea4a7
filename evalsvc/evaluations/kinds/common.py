"""Parameter choices and table pieces that several kinds share."""

from __future__ import annotations

from typing import Any

from .base import Table

DEVICES = ["cpu", "cuda", "gpu", "auto"]
PRECISIONS = ["fp32", "fp16", "int8"]

#: Rows that differ most, per candidate or variant, shown in the report (the result keeps more).
WORST_ROWS_SHOWN = 5


def target_name(target: dict[str, Any]) -> str:
    """An engine target as people name it: "openvino/cpu/fp32"."""
    return f"{target.get('backend')}/{target.get('device')}/{target.get('precision')}"


def share(value: float | None) -> str | None:
    return None if value is None else f"{100 * value:.2f} %"


def worst_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows that differ most, as shown on the run page and in the report."""
    return [
        {"row": r.get("row"), "max_abs_diff": r.get("max_abs_diff"), "reference_label": r.get("reference_label"),
         "candidate_label": r.get("candidate_label")}
        for r in rows[:WORST_ROWS_SHOWN]
    ]  # fmt: skip


def worst_rows_table(title: str, rows: list[dict[str, Any]]) -> Table:
    return {
        "title": title,
        "columns": ["Row", "max |Δ|", "Reference label", "Candidate label"],
        "rows": [list(r.values()) for r in worst_rows(rows)],
    }
