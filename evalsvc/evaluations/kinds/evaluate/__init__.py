"""The `evaluate` kind: run a model version over a labelled data set and score it."""

from __future__ import annotations

from ..base import FormField, JobKind
from . import params, tables
from .compare import evaluate_compare
from .figures import evaluate_figures
from .section import evaluate_section

KIND = JobKind(
    name="evaluate",
    label="Evaluation",
    summary="Evaluation: metrics on a labelled data set",
    task_name="evalsvc.evaluate",
    task_module="workers.tasks.evaluate",
    needs_dataset=True,
    clean_params=params.clean_params,
    route=params.route,
    figures=evaluate_figures,
    section=evaluate_section,
    csv_rows=None,
    template="dashboards/kinds/evaluate.html",
    page_context=tables.page_context,
    compare=evaluate_compare,
    params=params.EvaluateParams,
    form=(
        FormField("task"),
        FormField("label_column", "column"),
        FormField("backend", "backend"),
        FormField("device", "device"),
        FormField("batch_size"),
        FormField("slice_columns", "columns"),
    ),
)
