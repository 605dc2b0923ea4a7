"""The `profile` kind: latency and throughput over a grid of engines, devices, precisions, batch sizes
and thread counts, with objectives, a recommendation and a regression check."""

from __future__ import annotations

from ..base import FormField, JobKind
from . import params, tables
from .compare import profile_compare
from .figures import profile_figures
from .section import profile_section

KIND = JobKind(
    name="profile",
    label="Latency profile",
    summary="Latency profile: latency and throughput over engines, batch sizes and threads",
    task_name="evalsvc.profile",
    task_module="workers.tasks.profile",
    needs_dataset=False,
    clean_params=params.clean_params,
    route=params.route,
    figures=profile_figures,
    section=profile_section,
    csv_rows=tables.profile_rows,
    template="dashboards/kinds/profile.html",
    page_context=tables.page_context,
    compare=profile_compare,
    params=params.ProfileParams,
    form=(
        FormField("backends", "backend"),
        FormField("devices", "device"),
        FormField("batch_sizes"),
        FormField("preprocessing"),
        FormField("max_seconds_per_cell"),
    ),
)
