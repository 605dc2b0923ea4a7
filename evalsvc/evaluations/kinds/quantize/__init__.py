"""The `quantize` kind: FP16 and INT8 variants of an ONNX model version, registered and compared."""

from __future__ import annotations

from ..base import FormField, JobKind
from . import params, tables
from .compare import quantize_compare
from .figures import quantize_figures
from .section import quantize_section

KIND = JobKind(
    name="quantize",
    label="Quantization",
    summary="Quantization: FP16 and INT8 variants, compared with the parent",
    task_name="evalsvc.quantize",
    task_module="workers.tasks.quantize",
    needs_dataset=True,
    clean_params=params.clean_params,
    route=params.route,
    figures=quantize_figures,
    section=quantize_section,
    csv_rows=None,
    template="dashboards/kinds/quantize.html",
    page_context=tables.page_context,
    compare=quantize_compare,
    params=params.QuantizeParams,
    form=(FormField("variants"), FormField("label_column", "column"), FormField("batch_size")),
)
