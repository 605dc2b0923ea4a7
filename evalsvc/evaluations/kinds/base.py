"""What a job kind is made of, and the shapes its parts exchange.

A kind's parts read a run's stored params and result and never recompute a
metric: ``figures(result)`` gives the plotly figures the run page draws and
reports render as SVG; ``section(ctx)`` gives the report section (method,
tables, notes), whose tables are also the run page's when the kind has no
page template of its own; ``compare(runs)`` sets runs of the kind side by
side (metric rows, overlaid figures).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from evalsvc.registry.models import DatasetVersion, ModelVersion

Table = dict[str, Any]  # {"title", "columns": [...], "rows": [[...], ...], "note"?}
Figure = tuple[str, "go.Figure"]
Rows = list[dict[str, Any]]

#: Rows beyond this are left out of a generic table (with a note saying how many).
MAX_TABLE_ROWS = 60

#: The plotly layout every figure shares.
LAYOUT: dict[str, Any] = {"template": "plotly_white", "margin": {"l": 60, "r": 20, "t": 50, "b": 50}, "height": 420}


@dataclass
class JobContext:
    kind: str
    label: str
    params: dict[str, Any]
    result: dict[str, Any]
    dataset: str | None
    #: Earlier and later succeeded runs of the same kind on this model version (kinds with ``history``).
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Section:
    method: str
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CompareRun:
    """One run as a comparison sees it: a short name for columns and legends, its params and stored result."""

    name: str
    params: dict[str, Any]
    result: dict[str, Any]


@dataclass
class MetricRow:
    """One metric across the compared runs, in their order; ``better`` says which way is an improvement."""

    key: str
    label: str
    values: list[Any]
    #: "higher", "lower", or None when neither direction is better.
    better: str | None = None


@dataclass
class Comparison:
    """What a comparison shows: metric rows (one value per run), overlaid figures and notes."""

    metrics: list[MetricRow] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def no_figures(result: dict[str, Any]) -> list[Figure]:
    """For a kind whose result has nothing to chart."""
    return []


@dataclass(frozen=True)
class FormField:
    """One param of a kind offered on the job form, built from the kind's params serializer field ``name``.

    ``choose`` says how it is picked: ``"field"`` as the serializer field describes it (a number, a choice, a
    list of choices, comma-separated numbers, text); ``"column"``/``"columns"``: one or several of the chosen
    data set's columns; ``"dataset"``: another data set version; ``"backend"``/``"device"``: what live
    workers offer (a list param gets the one chosen). ``choices`` replaces free text with a list.
    """

    name: str
    choose: str = "field"
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobKind:
    """Everything about one job kind. Every part is given explicitly, even when it is the generic one."""

    #: The ``kind`` of a run, in the API and the database.
    name: str
    label: str
    #: One line for the submission form: what the job does.
    summary: str
    #: Celery task name; sent by name so the web side never imports worker code.
    task_name: str
    #: The module that defines the task; the Celery app imports it (the web side never does).
    task_module: str
    needs_dataset: bool
    #: Params as submitted → params as stored; raises ValidationFailed (a 400) when they do not fit.
    clean_params: Callable[[dict[str, Any], ModelVersion, DatasetVersion | None], dict[str, Any]]
    #: The queue for a job with these (cleaned) params; raises when no live worker can take it.
    route: Callable[[dict[str, Any], ModelVersion], str]
    #: Stored result → (title, plotly figure) pairs, for the run page and reports.
    figures: Callable[[dict[str, Any]], list[Figure]]
    #: The report section; ``generic_section`` lays out any result as tables.
    section: Callable[[JobContext], Section]
    #: One flat row per item of the result, served as ``result.csv``; ``None``: JSON download only.
    csv_rows: Callable[[dict[str, Any]], Rows] | None
    #: The run page's part for a succeeded run; ``None``: the section's tables, laid out generically.
    template: str | None
    #: Extra context for ``template`` (rows the template tables), computed from the stored result.
    page_context: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    #: Reports list every earlier run of the kind on the model version (a drift history).
    history: bool = False
    #: Side by side: the runs' headline metrics and overlaid figures; ``None``: the generic comparison
    #: (``generic.generic_compare``: every numeric metric the results store, no figures).
    compare: Callable[[list[CompareRun]], Comparison] | None = None
    #: The params schema (a DRF serializer class) ``clean_params`` checks against; the job form reads the
    #: fields named in ``form`` from it (type, bounds, choices, default, help).
    params: type | None = None
    #: The params the browser's job form offers for this kind, in order; the rest stay API-only.
    form: tuple[FormField, ...] = ()
