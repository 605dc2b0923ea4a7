from __future__ import annotations

import uuid

from django.db.models import QuerySet

from evalsvc.core.exceptions import NotFound, ValidationFailed
from evalsvc.core.users import AnyUser
from evalsvc.teams.selectors import get_scoped, scope_to_user, team_get_for_user

from .models import EvaluationRun, RunStatus

#: What a list of runs leaves unread: the stored result, where it ran, the parameters (``headline`` sums them up).
SUMMARY_DEFERRED = ("result", "environment", "params")

#: The columns a run summary reads from the rows it names (never their JSON: a model version's labels and specs).
_SUMMARY_RELATED = (
    "team__slug",
    "created_by__username",
    "model_version__version",
    "model_version__registered_model",
    "model_version__registered_model__name",
    "dataset_version__version",
    "dataset_version__dataset",
    "dataset_version__dataset__name",
)


def runs_for_user(*, user: AnyUser, team: str | None = None, status: str | None = None) -> QuerySet[EvaluationRun]:
    """The runs the user may see, as summaries: one query for a page, no stored result read."""
    fields = [f.name for f in EvaluationRun._meta.concrete_fields if f.name not in SUMMARY_DEFERRED]
    qs = scope_to_user(
        EvaluationRun.objects.select_related(
            "team", "created_by", "model_version__registered_model", "dataset_version__dataset"
        ).only(*fields, *_SUMMARY_RELATED),
        user=user,
    )
    if team:
        qs = qs.filter(team=team_get_for_user(user=user, team=team))
    if status:
        qs = qs.filter(status=status)
    return qs


def run_get(*, user: AnyUser, pk: object) -> EvaluationRun:
    qs = EvaluationRun.objects.select_related("team", "model_version__registered_model", "dataset_version__dataset")
    return get_scoped(qs, user=user, pk=pk, what="run")


#: Most runs one comparison sets side by side.
MAX_COMPARED_RUNS = 8


def runs_for_comparison(*, user: AnyUser, ids: list[str]) -> list[EvaluationRun]:
    """Two or more succeeded runs of one kind, each visible to ``user``, in the order given (the first is the baseline).

    Raises ValidationFailed (a 400) for too few or too many ids, a malformed id, runs of several kinds or a run
    with no result; NotFound (a 404) naming the ids of runs the user's teams do not have.
    """
    wanted = list(dict.fromkeys(i.strip() for i in ids if i and i.strip()))
    if len(wanted) < 2:
        raise ValidationFailed("choose at least two runs to compare (ids=<run id>,<run id>)")
    if len(wanted) > MAX_COMPARED_RUNS:
        raise ValidationFailed(f"at most {MAX_COMPARED_RUNS} runs can be compared at once; {len(wanted)} were chosen")
    malformed = []
    for value in wanted:
        try:
            uuid.UUID(value)
        except ValueError:
            malformed.append(value)
    if malformed:
        raise ValidationFailed(f"not run ids: {', '.join(repr(m[:40]) for m in malformed)}")
    # Whole runs (results and params compared), not the summaries lists read.
    found = {str(run.pk): run for run in runs_for_user(user=user).defer(None).filter(pk__in=wanted)}
    missing = [i for i in wanted if str(uuid.UUID(i)) not in found]
    if missing:
        raise NotFound(f"no run {', '.join(missing)} among your teams' runs: runs of other teams cannot be compared")
    runs = [found[str(uuid.UUID(i))] for i in wanted]
    kinds = list(dict.fromkeys(run.kind for run in runs))
    if len(kinds) > 1:
        described = ", ".join(f"{str(run.pk)[:8]} is {run.kind}" for run in runs)
        raise ValidationFailed(f"only runs of one kind can be compared ({described}); choose runs of one kind")
    unfinished = [run for run in runs if run.status != RunStatus.SUCCEEDED or not run.result]
    if unfinished:
        described = ", ".join(f"{str(run.pk)[:8]} is {run.status}" for run in unfinished)
        raise ValidationFailed(f"only succeeded runs have results to compare ({described})")
    return runs
