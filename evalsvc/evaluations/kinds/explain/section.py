"""The explanation's report section: method, parameters, seeds, budget, global importance and the trust table."""

from __future__ import annotations

from ..base import JobContext, Section, Table
from .tables import budget_rows, importance_rows, trust_rows


def explain_section(ctx: JobContext) -> Section:
    result = ctx.result
    params = result.get("params") or {}
    drawn = result.get("background") or {}
    background = f" and a k-means background of {drawn.get('rows')} rows" if drawn.get("kind") == "kmeans" else ""
    method = (
        f"{result.get('method_title', result.get('method'))} ({result.get('library')}) explained "
        f"{len(result.get('explained') or [])} chosen rows and a global sample of {(result.get('global') or {}).get('rows', 0)} "
        f"rows of {ctx.dataset or 'the data set'}, output {result.get('output')!r}, against a {result.get('baseline')} "
        f"baseline{background}; seed {result.get('seed')}. Parameters: "
        + ", ".join(f"{k}={v}" for k, v in params.items())
        + "."
    )
    tables: list[Table] = [
        {
            "title": "Global importance",
            "columns": ["Feature", "mean |attribution|"],
            "rows": [[r["feature"], r["mean_abs_attribution"]] for r in importance_rows(result)[:30]],
        },
        {
            "title": "How far to trust it",
            "columns": ["Score", "Value", "Threshold", "Status"],
            "rows": [[r["score"], r["value"], r["threshold"], r["status"]] for r in trust_rows(result)],
        },
        {
            "title": "Budget",
            "columns": ["Item", "Value"],
            "rows": [[r["item"], r["value"]] for r in budget_rows(result)],
        },
    ]
    drift = result.get("attribution_drift")
    if drift:
        tables.append(
            {
                "title": f"Attribution drift against the reference (nDCG {drift['ndcg']:.3f}, alert below {drift['threshold']})",
                "columns": ["Feature", "Reference", "Current", "Share change", "Rank (ref → cur)"],
                "rows": [
                    [
                        f["feature"],
                        f["reference"],
                        f["current"],
                        f["share_difference"],
                        f"{f['reference_rank']} → {f['current_rank']}",
                    ]
                    for f in drift["features"][:15]
                ],
            }
        )
    notes = [f"Flagged: {flag}." for flag in (result.get("trust") or {}).get("flags") or []]
    if result.get("modality") == "image":
        notes.append(
            (
                f"Features are the SLIC superpixels of each original image (about {params['superpixels']})"
                if params.get("superpixels")
                else "Features are square patches of the original images (patch_size pixels a side)"
            )
            + f", replaced by the {result.get('baseline')} baseline. Each explained image is drawn with its attribution heatmap over it "
            "(red raised the output, blue lowered it) in the figures; the table below lists each image's three "
            "strongest patches, and every patch's attribution is in the CSV and JSON downloads."
        )
        tables.insert(1, _top_patches(result))
    if result.get("modality") == "text":
        notes.append(
            "Features are the tokens of each text (special tokens and padding excluded), each replaced by the "
            "padding token when left out; global importance is per distinct token. Each explained text is drawn "
            "highlighted token by token in the figures; the table below lists each text's three strongest tokens, and every "
            "token's attribution is in the CSV and JSON downloads."
        )
        tables.insert(1, _top_tokens(result))
    details = (result.get("trust") or {}).get("details") or {}
    notes += [f"{k.replace('_', ' ')}: {v}" for k, v in details.items() if k.endswith(("_error", "_note"))]
    return Section(method=method, tables=tables, notes=notes)


def _top_patches(result: dict) -> Table:
    rows = []
    for row in (result.get("explained") or [])[:30]:
        pairs = sorted(zip(row.get("features") or [], row.get("values") or [], strict=False), key=lambda p: -abs(p[1]))
        rows.append(
            [row["row"], row.get("name"), row.get("label"), row.get("target")]
            + [f"{f} ({v:+.3g})" for f, v in pairs[:3]]
        )
    return {
        "title": "Explained images: the three patches that moved the output most",
        "columns": ["Row", "Image", "Label", "Explained", "1st", "2nd", "3rd"],
        "rows": rows,
    }


def _top_tokens(result: dict) -> Table:
    rows = []
    for row in (result.get("explained") or [])[:30]:
        pairs = sorted(zip(row.get("features") or [], row.get("values") or [], strict=False), key=lambda p: -abs(p[1]))
        rows.append(
            [row["row"], row.get("text"), row.get("label"), row.get("target")]
            + [f"{f} ({v:+.3g})" for f, v in pairs[:3]]
            + [""] * (3 - min(3, len(pairs)))
        )
    return {
        "title": "Explained texts: the three tokens that moved the output most",
        "columns": ["Row", "Text", "Label", "Explained", "1st", "2nd", "3rd"],
        "rows": rows,
    }
