"""Report pages: the builder, a report's page (downloads, approval), verification; all team-scoped."""

from __future__ import annotations

from functools import partial

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from evalsvc.core.exceptions import ApplicationError, NotFound
from evalsvc.core.users import signed_in_user
from evalsvc.registry.selectors import model_versions_for_user
from evalsvc.registry.uploads import uploaded_file_path
from evalsvc.teams.models import Membership
from evalsvc.teams.selectors import role_for

from . import selectors, services
from .forms import ReportBuilderForm, VerifyForm


@login_required
def report_list(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    reports = selectors.reports_for_user(user=user)[:200]
    # A viewer reads reports; generating one needs a role that writes them in some team.
    can_report = Membership.objects.filter(user=user, role__in=selectors.REPORT_WRITE_ROLES).exists()
    return render(request, "reports/list.html", {"reports": reports, "can_report": can_report})


@login_required
def report_builder(request: HttpRequest) -> HttpResponse:
    chosen = request.POST.get("model_version") or request.GET.get("model_version")
    model_version = None
    if chosen:
        try:
            model_version = model_versions_for_user(user=signed_in_user(request)).filter(pk=chosen).first()
        except ValidationError:
            model_version = None
    form = ReportBuilderForm(
        request.POST or None,
        initial={"model_version": model_version},
        user=signed_in_user(request),
        model_version=model_version,
    )
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            report = services.report_generate(
                user=signed_in_user(request),
                model_version_id=form.cleaned_data["model_version"].pk,
                run_ids=[str(run.pk) for run in form.cleaned_data["runs"]],
                title=form.cleaned_data["title"],
                monitors=form.monitors_for_service(),
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
            status = exc.status_code
        else:
            messages.success(request, f"Generated report version {report.version} (sha256 {report.sha256[:12]}…)")
            return redirect("report-detail", pk=report.pk)
    elif request.method == "POST":
        status = 400
    return render(request, "reports/builder.html", {"form": form, "model_version": model_version}, status=status)


@login_required
def report_detail(request: HttpRequest, pk: str) -> HttpResponse:
    report = selectors.report_get(user=signed_in_user(request), pk=pk)
    refusal = selectors.report_approval_refusal(user=signed_in_user(request), report=report)
    may_approve = role_for(user=signed_in_user(request), team=report.team) in selectors.REPORT_APPROVE_ROLES
    return render(
        request,
        "reports/detail.html",
        {
            "report": report,
            "doc": report.document,
            "runs": [rr.run for rr in report.report_runs.select_related("run__dataset_version__dataset")],
            "can_approve": not report.is_approved and refusal is None,
            # An owner or auditor who may not approve is the author under the four-eyes rule: say so.
            "approval_refusal": refusal if not report.is_approved and may_approve else None,
            "superseded_by": list(report.superseded_by.all()),
            "can_regenerate": role_for(user=signed_in_user(request), team=report.team) in selectors.REPORT_WRITE_ROLES,
        },
    )


def _act(request: HttpRequest, pk: str, action, done: str) -> HttpResponse:
    try:
        result = action(user=signed_in_user(request), report_id=pk)
    except NotFound:
        raise
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("report-detail", pk=pk)
    messages.success(request, done)
    return redirect("report-detail", pk=result.pk)


@login_required
def report_approve(request: HttpRequest, pk: str) -> HttpResponse:
    """The confirmation step: what is being approved, a comment, then the approval itself (POST)."""
    report = selectors.report_get(user=signed_in_user(request), pk=pk)
    if request.method != "POST":
        refusal = selectors.report_approval_refusal(user=signed_in_user(request), report=report)
        if report.is_approved or refusal is not None:
            messages.error(request, "This report is approved already." if report.is_approved else str(refusal))
            return redirect("report-detail", pk=pk)
        return render(
            request,
            "reports/approve.html",
            {"report": report, "doc": report.document, "max_comment": services.MAX_APPROVAL_COMMENT},
        )
    comment = request.POST.get("comment", "")
    expected = request.POST.get("sha256") or None
    return _act(
        request,
        pk,
        partial(services.report_approve, comment=comment, expected_sha256=expected),
        "The report is approved; its PDF now records your approval and comment, and it can no longer change.",
    )


@login_required
@require_POST
def report_regenerate(request: HttpRequest, pk: str) -> HttpResponse:
    return _act(request, pk, services.report_regenerate, "A new version of the report was generated.")


@login_required
def report_verify(request: HttpRequest) -> HttpResponse:
    form = VerifyForm(request.POST or None, request.FILES or None)
    outcome = None
    if request.method == "POST" and form.is_valid():
        with uploaded_file_path(form.cleaned_data["file"]) as path:
            outcome = selectors.report_verify(user=signed_in_user(request), path=path)
    return render(request, "reports/verify.html", {"form": form, "outcome": outcome})
