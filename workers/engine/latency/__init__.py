"""Latency profiling that agrees with the reference tools.

:func:`profile_grid` measures a model over backends × devices × precisions ×
batch sizes × thread counts: cold start, stable latency percentiles and
throughput (the perf_analyzer window rule), memory, an optional concurrency
sweep, verdicts against latency/throughput objectives and a recommended
configuration. :func:`compare_profiles` tests two profiles for regressions
cell by cell. Results are dataclasses whose ``to_dict()`` is the JSON the
service stores.

Modules: :mod:`.stats` (percentiles, summaries), :mod:`.stability` (the
window rule and the measurement loop), :mod:`.inputs` (synthetic and
data-set inputs), :mod:`.grid` (what a profile covers), :mod:`.profile`
(measuring cells and grids), :mod:`.concurrency`,
:mod:`.objectives`, :mod:`.regression`, :mod:`.host`, :mod:`.memory`,
:mod:`.results`.
"""

from __future__ import annotations

from workers.engine.latency.concurrency import concurrency_levels
from workers.engine.latency.host import HostFacts, host_facts
from workers.engine.latency.inputs import (
    CellInputs,
    InputsFactory,
    RowsInputs,
    SyntheticInputs,
    synthetic_batch,
    tabular_preprocess,
)
from workers.engine.latency.objectives import LatencyObjective, Objectives, ThroughputObjective
from workers.engine.latency.profile import ProfileGrid, profile_cell, profile_grid
from workers.engine.latency.regression import (
    RegressionReport,
    SampleComparison,
    cliffs_delta,
    compare_profiles,
    compare_samples,
)
from workers.engine.latency.results import CellKey, CellResult, ProfileResult
from workers.engine.latency.stability import StabilityRule, evaluate_sequence, measure_until_stable
from workers.engine.latency.stats import LatencySummary, percentile, percentiles, summarize

__all__ = [
    "CellInputs",
    "CellKey",
    "CellResult",
    "HostFacts",
    "InputsFactory",
    "LatencyObjective",
    "LatencySummary",
    "Objectives",
    "ProfileGrid",
    "ProfileResult",
    "RegressionReport",
    "RowsInputs",
    "SampleComparison",
    "StabilityRule",
    "SyntheticInputs",
    "ThroughputObjective",
    "cliffs_delta",
    "compare_profiles",
    "compare_samples",
    "concurrency_levels",
    "evaluate_sequence",
    "host_facts",
    "measure_until_stable",
    "percentile",
    "percentiles",
    "profile_cell",
    "profile_grid",
    "summarize",
    "synthetic_batch",
    "tabular_preprocess",
]
