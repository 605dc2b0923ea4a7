from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from evalsvc.core.exceptions import ApplicationError, NotFound
from evalsvc.core.users import signed_in_user

from . import services
from .forms import RunSubmitForm


@login_required
def run_submit(request: HttpRequest) -> HttpResponse:
    initial = {k: request.GET[k] for k in ("model_version", "dataset_version", "kind") if k in request.GET}
    form = RunSubmitForm(request.POST or None, initial=initial, user=signed_in_user(request))
    status = 200
    if request.method == "POST" and form.is_valid():
        dataset = form.cleaned_data["dataset_version"]
        try:
            run = services.run_submit(
                user=signed_in_user(request),
                model_version_id=form.cleaned_data["model_version"].pk,
                dataset_version_id=dataset.pk if dataset else None,
                kind=form.cleaned_data["kind"],
                params=form.params(),
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
            status = exc.status_code
        else:
            return redirect("run-detail", pk=run.pk)
    elif request.method == "POST":
        status = 400
    return render(request, "evaluations/run_submit.html", {"form": form}, status=status)


@login_required
@require_POST
def run_cancel(request: HttpRequest, pk: str) -> HttpResponse:
    try:
        services.run_cancel(user=signed_in_user(request), run_id=pk)
    except NotFound:
        raise  # another team's run: the 404 page
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.info(request, "The run was cancelled.")
    return redirect("run-detail", pk=pk)
