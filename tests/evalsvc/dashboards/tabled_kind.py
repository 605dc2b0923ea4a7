"""A job kind registered only in tests: the evaluation's params, task and figures, but no page template
and the generic report section, as a newly added kind has before anyone writes its own."""

from __future__ import annotations

from evalsvc.evaluations.kinds import JobKind
from evalsvc.evaluations.kinds.evaluate import params
from evalsvc.evaluations.kinds.evaluate.figures import evaluate_figures
from evalsvc.evaluations.kinds.generic import generic_section

KIND = JobKind(
    name="tabled",
    label="Tabled evaluation",
    summary="Tabled evaluation: a kind with no page of its own",
    task_name="evalsvc.evaluate",
    task_module="workers.tasks.evaluate",
    needs_dataset=True,
    clean_params=params.clean_params,
    route=params.route,
    figures=evaluate_figures,
    section=generic_section,
    csv_rows=None,
    template=None,
)
