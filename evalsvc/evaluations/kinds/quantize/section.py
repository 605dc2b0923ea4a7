"""The quantization section: the variants against their parent."""

from __future__ import annotations

from ..base import JobContext, Section, Table
from ..common import share, worst_rows_table
from .tables import timing_cells, variant_rows


def quantize_section(ctx: JobContext) -> Section:
    result = ctx.result
    method = (
        "Smaller numeric variants of the model were made (FP16 by conversion, INT8 by dynamic or calibrated "
        "static quantization), registered as versions of their own linked to this one, and run beside it on the "
        f"same {result.get('rows', '?')} rows of {ctx.dataset or 'the data set'} with "
        f"{(result.get('backend') or {}).get('backend', 'onnxruntime')}: size, agreement with the parent's "
        "outputs and quality on the labels are compared. Latency is measured per model as the latency "
        "profiler does (load, warm-up, then windows until three agree within 10 % or the time budget ends) on "
        "synthetic inputs of one batch; the speed-up is the ratio of the parent's median latency to the variant's."
    )
    rows, notes = [], []
    for v in variant_rows(result):
        if v.get("status") != "ok":
            notes.append(f"The {v.get('variant')} variant could not be made: {v.get('error')}")
            continue
        version = f"v{v['version']}" if v.get("version") else "this version"
        rows.append(
            [v.get("variant"), version, v.get("size_bytes"), v.get("size_ratio"), v.get("quality"),
             share(v.get("label_agreement")), v.get("max_abs"), *timing_cells(v.get("timing") or {}), v.get("speedup")]
        )  # fmt: skip
    metrics = (result.get("parent") or {}).get("metrics") or {}
    quality = "accuracy" if "accuracy" in metrics else ("R²" if "r2" in metrics else "quality")
    tables: list[Table] = [
        {
            "title": "Variants against the parent",
            "columns": [
                "Variant",
                "Version",
                "Bytes",
                "Size ratio",
                quality.capitalize() if quality != "R²" else "R²",
                "Label agreement",
                "max |Δ|",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "std ms",
                "Stable",
                "Speed-up",
            ],  # fmt: skip
            "rows": rows,
        }
    ]
    for v in result.get("variants") or []:
        if v.get("worst_rows"):
            tables.append(worst_rows_table(f"Rows that differ most in the {v.get('variant')} variant", v["worst_rows"]))
        notes += [f"{v.get('variant')}: {n}" for n in v.get("notes") or []]
    if not metrics:
        notes.append("The data set has no label column, so quality on the labels was not measured.")
    return Section(method=method, tables=tables, notes=notes)
