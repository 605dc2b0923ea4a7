"""The quantization section: the variants against their parent."""

from __future__ import annotations

from ..base import JobContext, Section, Table
from ..common import share, worst_rows_table
from .tables import timing_cells, variant_rows


def quantize_section(ctx: JobContext) -> Section:
    result = ctx.result
    calibration = result.get("calibration")
    method = (
        "Smaller numeric variants of the model were made (FP16 by conversion, INT8 by dynamic or calibrated "
        "static quantization), registered as versions of their own linked to this one, and run beside it on the "
        f"same {result.get('rows', '?')} rows of {ctx.dataset or 'the data set'} with "
        f"{(result.get('backend') or {}).get('backend', 'onnxruntime')}, "
        f"{result.get('serving_batch_size', '?')} rows per call (the serving batch size; dynamic INT8 outputs "
        "depend on which rows share a call): size, agreement with the parent's outputs and quality on the "
        "labels are compared, all on those same rows. " + calibration_text(calibration) + " Latency is measured "
        "per model as the latency profiler does (load, warm-up, then windows until three agree within 10 % or "
        "the time budget ends) on synthetic inputs of one batch; the speed-up is the ratio of the parent's "
        "median latency to the variant's."
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
    if calibration:
        notes.append(f"Calibration rows (0-based data row indices): {row_indices(calibration.get('indices') or [])}")
    return Section(method=method, tables=tables, notes=notes)


def calibration_text(calibration: dict | None) -> str:
    """How the static INT8 variant's calibration rows were chosen, in words a validator can repeat."""
    if not calibration:
        return "No variant needed calibration rows."
    classes = calibration.get("classes") or {}
    per_class = f" ({', '.join(f'{k}: {v}' for k, v in classes.items())})" if classes else ""
    if not calibration.get("held_out"):
        return (
            f"The static INT8 variant was calibrated on {calibration.get('rows')} rows{per_class} of the separate "
            f"data set {calibration.get('dataset') or calibration.get('dataset_version_id')} "
            f"({calibration.get('method')}, seed {calibration.get('seed')})."
        )
    how = "stratified by label" if calibration.get("method") == "stratified" else "uniformly at random"
    return (
        f"The static INT8 variant was calibrated on {calibration.get('rows')} rows{per_class} drawn {how} "
        f"with seed {calibration.get('seed')}; those rows were left out of every comparison."
    )


def row_indices(indices: list[int], limit: int = 400) -> str:
    shown = ", ".join(str(i) for i in indices[:limit])
    return shown + (f" … and {len(indices) - limit} more" if len(indices) > limit else "")
