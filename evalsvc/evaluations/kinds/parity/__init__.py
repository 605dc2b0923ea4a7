"""The `parity` kind: one model version, one data set, the same inputs on several engines."""

from __future__ import annotations

from ..base import FormField, JobKind
from . import params, tables
from .compare import parity_compare
from .figures import parity_figures
from .section import parity_section

KIND = JobKind(
    name="parity",
    label="Backend parity",
    summary="Backend parity: the same inputs on every engine and device",
    task_name="evalsvc.parity",
    task_module="workers.tasks.parity",
    needs_dataset=True,
    clean_params=params.clean_params,
    route=params.route,
    figures=parity_figures,
    section=parity_section,
    csv_rows=None,
    template="dashboards/kinds/parity.html",
    page_context=tables.page_context,
    compare=parity_compare,
    params=params.ParityParams,
    form=(FormField("batch_size"), FormField("max_rows"), FormField("top_n")),
)
