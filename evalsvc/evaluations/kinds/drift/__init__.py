"""The `drift` kind: a data set version compared with a reference one, column by column and jointly."""

from __future__ import annotations

from ..base import FormField, JobKind
from . import params
from .figures import drift_figures
from .section import drift_section, feature_rows

KIND = JobKind(
    name="drift",
    label="Drift",
    summary="Drift: this data set against a reference, per column with effect sizes, and jointly",
    task_name="evalsvc.drift",
    task_module="workers.tasks.drift",
    needs_dataset=True,
    clean_params=params.clean_params,
    route=params.route,
    figures=drift_figures,
    section=drift_section,
    csv_rows=feature_rows,
    template=None,
    history=True,
    params=params.DriftParams,
    form=(
        FormField("reference_dataset", "dataset"),
        FormField("columns", "columns"),
        FormField("alpha"),
        FormField("correction"),
        FormField("numeric_test"),
        FormField("prediction_drift"),
    ),
)
