"""The drift job's report section and tables: per column, per multivariate detector."""

from __future__ import annotations

from typing import Any

from ..base import JobContext, Rows, Section, Table
from .figures import ranked

TESTS = {
    "ks": "Kolmogorov–Smirnov (exact)",
    "cvm": "Cramér–von Mises",
    "chi2": "chi-square",
    "fisher": "Fisher's exact",
}


def _num(value: Any, digits: int = 4) -> Any:
    return round(value, digits) if isinstance(value, float) else value


def feature_rows(result: dict[str, Any]) -> Rows:
    rows = []
    for f in ranked(result):
        rows.append(
            {
                "column": f["name"],
                "kind": f.get("kind"),
                "test": f.get("test"),
                "statistic": f.get("statistic"),
                "p_value": f.get("p_value"),
                "p_adjusted": f.get("p_adjusted"),
                "drift": f.get("drift"),
                "psi": f.get("psi"),
                "js_distance": f.get("js_distance"),
                "wasserstein": f.get("wasserstein"),
                "n_reference": f.get("n_reference"),
                "n_current": f.get("n_current"),
                "missing_current": f.get("missing_current"),
                "new_categories": ", ".join(f.get("new_categories") or []),
                "error": f.get("error") or "",
            }
        )
    return rows


def drift_tables(result: dict[str, Any]) -> list[Table]:
    columns = [
        "Column", "Kind", "Test", "Statistic", "p", "p adj.", "Drift", "PSI", "JS distance", "Wasserstein",
        "n ref.", "n cur.", "New categories",
    ]  # fmt: skip
    rows = [
        [r["column"], r["kind"], TESTS.get(r["test"] or "", r["test"] or r["error"]), _num(r["statistic"]),
         _num(r["p_value"], 6), _num(r["p_adjusted"], 6), "yes" if r["drift"] else "no", _num(r["psi"]),
         _num(r["js_distance"]), _num(r["wasserstein"]), r["n_reference"], r["n_current"], r["new_categories"]]
        for r in feature_rows(result)
    ]  # fmt: skip
    tables: list[Table] = [{"title": "Columns, most moved first", "columns": columns, "rows": rows}]
    multivariate = result.get("multivariate") or []
    if multivariate:
        tables.append(
            {
                "title": "Multivariate detectors",
                "columns": ["Detector", "Statistic", "p", "Drift", "Rows (ref./cur.)", "Permutations", "Seconds"],
                "rows": [
                    [
                        m["detector"],
                        _num(m.get("statistic"), 6),
                        _num(m.get("p_value"), 4),
                        "yes" if m.get("drift") else ("error: " + m["error"] if m.get("error") else "no"),
                        f"{m.get('n_reference_sample')}/{m.get('n_current_sample')}",
                        m.get("permutations"),
                        _num(m.get("seconds"), 2),
                    ]
                    for m in multivariate
                ],  # fmt: skip
            }
        )
    return tables


def drift_section(ctx: JobContext) -> Section:
    result, params = ctx.result, ctx.params
    correction = {"bonferroni": "Bonferroni", "fdr": "Benjamini–Hochberg (FDR)", "none": "no"}.get(
        params.get("correction", "bonferroni"), params.get("correction")
    )
    method = (
        f"The current data ({ctx.dataset or 'the data set'}, {result.get('n_current', '?')} rows) was compared with "
        f"the reference {params.get('reference_label', '')} ({result.get('n_reference', '?')} rows), column by column: "
        "numeric columns with the "
        f"{TESTS.get(params.get('numeric_test', 'ks'))} test, categorical ones with chi-square, binary ones with "
        f"{TESTS.get(params.get('binary_test', 'fisher'))} test; p-values were corrected with {correction} correction "
        f"across {len(result.get('features') or [])} columns and a column drifts when its corrected p-value is below "
        f"α = {params.get('alpha', 0.05)}. Effect sizes: population stability index and Jensen–Shannon distance "
        "(over the reference's deciles or the categories) and Wasserstein distance (numeric columns)."
    )
    embedding = result.get("embedding")
    if embedding and not result.get("features"):
        method = (
            f"The current images ({ctx.dataset or 'the data set'}, {result.get('n_current', '?')} rows) were "
            f"compared with the reference {params.get('reference_label', '')} ({result.get('n_reference', '?')} "
            "rows) through the model: "
            + ("its penultimate layer" if embedding.get("source") == "penultimate" else "its prepared input")
            + f" ({embedding.get('tensor')}, {embedding.get('dimensions')} values per image), projected by one "
            "fixed Gaussian matrix, then MMD with a permutation test; drift when its p-value is below "
            f"α = {params.get('alpha', 0.05)}."
        )
    notes = []
    drifted = result.get("drifted_features") or []
    notes.append(
        f"Verdict: drift in {len(drifted)} column(s): {', '.join(drifted)}."
        if drifted
        else "Verdict: no column drifted."
        if result.get("features")
        else f"Verdict: {'drift' if result.get('drift') else 'no drift'} in the model's embeddings."
    )
    sampled = {f.get("sample_size") for f in result.get("features") or [] if f.get("sample_size")}
    if sampled:
        notes.append(
            f"Wasserstein distances (and Cramér–von Mises tests) use a uniform sample of {max(sampled)} current rows; "
            "the other statistics use every row."
        )
    for m in result.get("multivariate") or []:
        if not m.get("error"):
            what = (
                f"the model's embeddings ({m['params'].get('tensor')}, projected to {m['params'].get('dim')} "
                "dimensions)"
                if m["detector"] == "embedding_mmd" and m.get("params")
                else "numeric columns, standardised by the reference"
            )
            notes.append(
                f"{m['detector']}: ran on {m.get('n_reference_sample')} reference and {m.get('n_current_sample')} "
                f"current rows ({what})."
                + (" Its p-value is (k + 1)/(n + 1) over the permutations." if m.get("permutations") else "")
            )
    prediction = result.get("prediction")
    if prediction:
        verdict = "moved" if prediction.get("drift") else "did not move"
        notes.append(
            f"Prediction drift: the distribution of the model's predicted classes {verdict} "
            f"(chi-square p = {prediction.get('p_value'):.3g}, PSI {prediction.get('psi') or 0:.3g}, "
            f"{prediction.get('n_reference')} reference and {prediction.get('n_current')} current rows)."
        )
    notes += list(result.get("errors") or [])
    return Section(method=method, tables=drift_tables(result), notes=notes)
