"""The backend-parity and quantization sections: differences from the reference, variant by variant."""

from __future__ import annotations

from typing import Any

from evalsvc.dashboards.figures import variant_rows

from ._registry import JobContext, Section, Table, section

#: Rows that differ most, per candidate, shown in the report (the result keeps more).
WORST_ROWS_SHOWN = 5


def _target(target: dict[str, Any]) -> str:
    return f"{target.get('backend')}/{target.get('device')}/{target.get('precision')}"


def _worst_table(title: str, rows: list[dict[str, Any]]) -> Table:
    return {
        "title": title,
        "columns": ["Row", "max |Δ|", "Reference label", "Candidate label"],
        "rows": [
            [r.get("row"), r.get("max_abs_diff"), r.get("reference_label"), r.get("candidate_label")]
            for r in rows[:WORST_ROWS_SHOWN]
        ],
    }


def _share(value: float | None) -> str | None:
    return None if value is None else f"{100 * value:.2f} %"


@section("parity")
def parity_section(ctx: JobContext) -> Section:
    result = ctx.result
    reference = result.get("reference") or {}
    ran = result.get("reference_backend") or {}
    method = (
        f"The same {result.get('rows', '?')} rows of {ctx.dataset or 'the data set'} were run through the model on "
        f"the reference, {_target(reference)} ({ran.get('backend')} {ran.get('version')}, {ran.get('provider')}), "
        "and on each candidate engine, device and precision; every output was compared element by element "
        "(absolute and relative difference) and, for class outputs, by the predicted label."
    )
    rows, tables, notes = [], [], []
    for c in result.get("candidates") or []:
        name = _target(c.get("target") or {})
        if c.get("status") != "ok":
            notes.append(f"{name} was not compared ({c.get('status')}): {c.get('error')}")
            continue
        provider = (c.get("backend") or {}).get("provider")
        for o in c.get("outputs") or []:
            rows.append(
                [f"{name} ({provider})" if provider else name, o.get("name"), o.get("max_abs"), o.get("mean_abs"),
                 o.get("max_rel"), _share(o.get("label_agreement")), o.get("disagreeing_rows")]
            )  # fmt: skip
        if c.get("worst_rows"):
            tables.append(_worst_table(f"Rows that differ most on {name}", c["worst_rows"]))
    tables.insert(
        0,
        {
            "title": f"Differences from {_target(reference)}",
            "columns": ["Candidate", "Output", "max |Δ|", "mean |Δ|", "max rel", "Label agreement", "Disagreeing rows"],
            "rows": rows,
        },
    )
    return Section(method=method, tables=tables, notes=notes)


@section("quantize")
def quantize_section(ctx: JobContext) -> Section:
    result = ctx.result
    method = (
        "Smaller numeric variants of the model were made (FP16 by conversion, INT8 by dynamic or calibrated "
        "static quantization), registered as versions of their own linked to this one, and run beside it on the "
        f"same {result.get('rows', '?')} rows of {ctx.dataset or 'the data set'} with "
        f"{(result.get('backend') or {}).get('backend', 'onnxruntime')}: size, agreement with the parent's "
        "outputs, quality on the labels and time per row are compared."
    )
    rows, notes = [], []
    for v in variant_rows(result):
        if v.get("status") != "ok":
            notes.append(f"The {v.get('variant')} variant could not be made: {v.get('error')}")
            continue
        version = f"v{v['version']}" if v.get("version") else "this version"
        rows.append(
            [v.get("variant"), version, v.get("size_bytes"), v.get("size_ratio"), v.get("quality"),
             _share(v.get("label_agreement")), v.get("max_abs"), v.get("speedup")]
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
                "Speed-up",
            ],  # fmt: skip
            "rows": rows,
        }
    ]
    for v in result.get("variants") or []:
        if v.get("worst_rows"):
            tables.append(_worst_table(f"Rows that differ most in the {v.get('variant')} variant", v["worst_rows"]))
        notes += [f"{v.get('variant')}: {n}" for n in v.get("notes") or []]
    if not metrics:
        notes.append("The data set has no label column, so quality on the labels was not measured.")
    return Section(method=method, tables=tables, notes=notes)
