"""The `explain` kind: attributions for chosen rows and a global sample, how far to trust them, and their budget."""

from __future__ import annotations

from ..base import FormField, JobKind
from . import params, tables
from .figures import explain_figures
from .section import explain_section

KIND = JobKind(
    name="explain",
    label="Explanation",
    summary="Explanation: captum and shap attributions per row and overall, with faithfulness scores",
    task_name="evalsvc.explain",
    task_module="workers.tasks.explain",
    needs_dataset=True,
    clean_params=params.clean_params,
    route=params.route,
    figures=explain_figures,
    section=explain_section,
    csv_rows=tables.attribution_rows,
    template=None,
    params=params.ExplainParams,
    form=(
        FormField("method", choices=tuple(sorted(params.METHODS))),
        FormField("label_column", "column"),
        FormField("global_rows"),
        FormField("baseline"),
        FormField("background_k"),
        FormField("cohort_by"),
        FormField("time_budget_s"),
        FormField("reference_dataset", "dataset"),
        FormField("backend", "backend"),
        FormField("device", "device"),
        FormField("patch_size"),
        FormField("superpixels"),
    ),
)
