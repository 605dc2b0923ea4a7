"""The backend-parity section: differences from the reference, candidate by candidate."""

from __future__ import annotations

from ..base import JobContext, Section, Table
from ..common import share, target_name, worst_rows_table
from .tables import model_name, parity_rows, parity_worst_rows


def parity_section(ctx: JobContext) -> Section:
    result = ctx.result
    reference = result.get("reference") or {}
    ran = result.get("reference_backend") or {}
    method = (
        f"The same {result.get('rows', '?')} rows of {ctx.dataset or 'the data set'} were run through the model on "
        f"the reference, {target_name(reference)}{_on(reference)} ({ran.get('backend')} {ran.get('version')}, {ran.get('provider')}), "
        "and on each candidate engine, device and precision; every output was compared element by element "
        "(absolute and relative difference) and, for class outputs, by the predicted label."
    )
    rows: list[list[object]] = []
    notes: list[str] = []
    for r in parity_rows(result):
        if r["status"] != "ok":
            notes.append(f"{r['candidate']} was not compared ({r['status']}): {r['error']}")
            continue
        candidate = f"{r['candidate']} ({r['provider']})" if r["provider"] else r["candidate"]
        if r["model"] and r["model"] != model_name(reference):  # another format of the same model
            candidate = f"{candidate} on {r['model']}"
        rows.append(
            [candidate, r["output"], r["max_abs"], r["mean_abs"], r["max_rel"], share(r["label_agreement"]),
             r["disagreeing_rows"]]
        )  # fmt: skip
    tables: list[Table] = [
        {
            "title": f"Differences from {target_name(reference)}",
            "columns": ["Candidate", "Output", "max |Δ|", "mean |Δ|", "max rel", "Label agreement", "Disagreeing rows"],
            "rows": rows,
        }
    ]
    tables += [
        worst_rows_table(f"Rows that differ most on {w['candidate']}", w["rows"]) for w in parity_worst_rows(result)
    ]
    return Section(method=method, tables=tables, notes=notes)


def _on(reference: dict[str, object]) -> str:
    name = model_name(reference)
    return f" with {name}" if name else ""
