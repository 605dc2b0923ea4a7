"""Generating, editing, approving and deleting audit reports; the team's thresholds.

A report is rendered once, synchronously (a few jobs' stored results: about
a second), and stored as a PDF in the content-addressed store with its
SHA-256, plus its HTML and its JSON document. Approval freezes it: editing an
approved report is refused, and a change is made by regenerating it as the
next version, which supersedes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import uuid
from collections.abc import Sequence
from datetime import UTC as dt_timezone
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from evalsvc.audit.services import audit_record
from evalsvc.core.exceptions import Conflict, Forbidden, NotFound, ValidationFailed
from evalsvc.core.users import User
from evalsvc.evaluations.models import EvaluationRun, RunStatus
from evalsvc.evaluations.selectors import run_get
from evalsvc.registry.models import ModelVersion
from evalsvc.registry.selectors import model_version_get
from evalsvc.registry.storage import blob_delete, blob_store
from evalsvc.teams.models import Role, Team
from evalsvc.teams.selectors import role_for

from .document import report_document_build
from .models import Report, ReportMonitor, ReportPolicy, ReportRun, ReportStatus
from .render import render_html, render_pdf
from .selectors import (
    REPORT_APPROVE_ROLES,
    REPORT_WRITE_ROLES,
    report_approval_refusal,
    report_get,
    report_thresholds,
)

MAX_RUNS = 50


def _require_role(*, user: User, team: Team, roles: frozenset[str], doing: str) -> str:
    role = role_for(user=user, team=team)
    if role is None:
        raise NotFound("team not found")
    if role not in roles:
        needed = " or ".join(sorted(roles))
        raise Forbidden(f"your role in team {team.slug!r} is {role}; {doing} needs {needed}")
    return role


# --- thresholds -----------------------------------------------------------------


def _clean_thresholds(thresholds: Any) -> dict[str, dict[str, float]]:
    if not isinstance(thresholds, dict):
        raise ValidationFailed('thresholds must be an object such as {"accuracy": {"min": 0.9}, "rmse": {"max": 60}}')
    cleaned: dict[str, dict[str, float]] = {}
    for metric, bounds in thresholds.items():
        if not isinstance(metric, str) or not metric.strip() or len(metric) > 80:
            raise ValidationFailed(f"{metric!r} is not a metric name")
        if not isinstance(bounds, dict) or not bounds or set(bounds) - {"min", "max"}:
            raise ValidationFailed(f'the threshold for {metric!r} must be {{"min": x}}, {{"max": y}} or both')
        for bound, value in bounds.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValidationFailed(f"the {bound} of {metric!r} must be a number, not {value!r}")
        if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
            raise ValidationFailed(f"the threshold for {metric!r} has min {bounds['min']} above max {bounds['max']}")
        cleaned[metric.strip()] = {b: float(v) for b, v in sorted(bounds.items())}
    return cleaned


def report_policy_set(
    *, user: User, team: Team, thresholds: Any, allow_self_approval: bool | None = None
) -> ReportPolicy:
    """Replace the team's report thresholds and, when given, whether authors may approve (owners only)."""
    _require_role(user=user, team=team, roles=frozenset({Role.OWNER}), doing="changing the report policy")
    cleaned = _clean_thresholds(thresholds)
    if allow_self_approval is not None and not isinstance(allow_self_approval, bool):
        raise ValidationFailed("allow_self_approval must be true or false")
    with transaction.atomic():
        policy, _ = ReportPolicy.objects.select_for_update().get_or_create(team=team)
        previous = {"thresholds": policy.thresholds, "allow_self_approval": policy.allow_self_approval}
        policy.thresholds, policy.updated_by = cleaned, user
        if allow_self_approval is not None:
            policy.allow_self_approval = allow_self_approval
        policy.save()
        audit_record(
            actor=user,
            team=team,
            action="report_policy.changed",
            obj=policy,
            details={
                "thresholds": cleaned,
                "allow_self_approval": policy.allow_self_approval,
                "previous": previous,
            },
        )
    return policy


# --- rendering --------------------------------------------------------------------


def _select_runs(*, user: User, model_version: ModelVersion, run_ids: Any) -> list[EvaluationRun]:
    if not isinstance(run_ids, list | tuple) or not run_ids:
        raise ValidationFailed("pick at least one job to include ('runs': a list of run ids)")
    if len(run_ids) > MAX_RUNS:
        raise ValidationFailed(f"a report includes at most {MAX_RUNS} jobs")
    related = {model_version.pk}
    parent_id = getattr(model_version, "parent_id", None)
    if parent_id:
        related.add(parent_id)  # the quantization or conversion that made this variant
    runs: list[EvaluationRun] = []
    for run_id in dict.fromkeys(str(r) for r in run_ids):
        run = run_get(user=user, pk=run_id)
        mentioned = str(model_version.pk) in json.dumps([run.params, run.result], default=str)
        if run.team_id != model_version.team_id or (run.model_version_id not in related and not mentioned):
            raise ValidationFailed(f"job {run_id} is about {run.model_version}, not {model_version}")
        if run.status != RunStatus.SUCCEEDED:
            raise ValidationFailed(f"job {run_id} is {run.status}; only succeeded jobs have results to report")
        runs.append(run)
    return runs


#: Monitors' histories one report includes at most.
MAX_MONITORS = 10
MonitorPeriod = tuple[Any, datetime, datetime]


def _moment(value: Any, what: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise ValidationFailed(f"{what} must be an ISO 8601 date or time, not {value!r}") from None
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, dt_timezone.utc)


def _select_monitors(*, user: User, model_version: ModelVersion, periods: Any) -> list[MonitorPeriod]:
    """[{"monitor": id, "start": ..., "end": ...}] → the monitors watching this model version, with their periods."""
    from evalsvc.monitoring.selectors import monitor_get

    if periods is None:
        return []
    if not isinstance(periods, list | tuple):
        raise ValidationFailed("'monitors' must be a list of {'monitor': id, 'start': date, 'end': date}")
    if len(periods) > MAX_MONITORS:
        raise ValidationFailed(f"a report includes at most {MAX_MONITORS} monitors' histories")
    chosen: list[MonitorPeriod] = []
    for i, period in enumerate(periods):
        if not isinstance(period, dict) or not period.get("monitor"):
            raise ValidationFailed(f"monitors[{i}] must be an object with 'monitor', 'start' and 'end'")
        monitor = monitor_get(user=user, pk=period["monitor"])
        if monitor.model_version_id != model_version.pk:
            raise ValidationFailed(f"monitor {monitor.name!r} watches {monitor.model_version}, not {model_version}")
        start = _moment(period.get("start"), f"monitors[{i}].start")
        end = _moment(period.get("end"), f"monitors[{i}].end")
        if end <= start:
            raise ValidationFailed(f"monitors[{i}]: the period ends ({end:%Y-%m-%d %H:%M}) before it starts")
        chosen.append((monitor, start, end))
    return chosen


def _stored_monitors(report: Report) -> list[MonitorPeriod]:
    return [(rm.monitor, rm.start, rm.end) for rm in report.report_monitors.select_related("monitor")]


def _save_monitors(report: Report, monitors: list[MonitorPeriod]) -> None:
    report.report_monitors.all().delete()
    ReportMonitor.objects.bulk_create(
        [ReportMonitor(report=report, monitor=m, start=s, end=e, position=i) for i, (m, s, e) in enumerate(monitors)]
    )


def _monitors_audited(monitors: list[MonitorPeriod]) -> list[dict[str, str]]:
    return [{"monitor": str(m.pk), "start": s.isoformat(), "end": e.isoformat()} for m, s, e in monitors]


def _clean_title(title: str | None, model_version: ModelVersion) -> str:
    title = (title or "").strip()
    if len(title) > 300:
        raise ValidationFailed("the title is longer than 300 characters")
    return title or f"Model audit report: {model_version.registered_model.name} v{model_version.version}"


def _store_pdf(content: bytes, sha256: str) -> tuple[str, bool]:
    directory = settings.FILE_UPLOAD_TEMP_DIR or None
    fd, path = tempfile.mkstemp(suffix=".pdf", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        return blob_store(path=path, sha256=sha256)
    finally:
        os.unlink(path)


def _render(report: Report, runs: list[EvaluationRun], monitors: Sequence[MonitorPeriod] = ()) -> bool:
    """Fill the report's document, HTML and PDF; returns whether the PDF blob was newly stored."""
    document = report_document_build(
        report=report,
        runs=runs,
        thresholds=report_thresholds(team=report.team),
        generated_at=timezone.now(),
        monitors=list(monitors),
    )
    html = render_html(document)
    pdf = render_pdf(html, report_id=report.pk)
    report.document, report.html = document, html
    report.sha256 = hashlib.sha256(pdf).hexdigest()
    report.size_bytes = len(pdf)
    report.pdf_key, created = _store_pdf(pdf, report.sha256)
    return created


def _drop_blob_later(key: str) -> None:
    def drop() -> None:
        if not Report.objects.filter(pdf_key=key).exists():
            blob_delete(key)

    transaction.on_commit(drop)


def report_generate(
    *,
    user: User,
    model_version_id: object,
    run_ids: Any,
    title: str | None = None,
    supersedes: Report | None = None,
    monitors: Any = None,
) -> Report:
    """Render and store the next report of a model version over the chosen jobs (and monitors' histories)."""
    model_version = model_version_get(user=user, pk=model_version_id)
    _require_role(user=user, team=model_version.team, roles=REPORT_WRITE_ROLES, doing="generating reports")
    runs = _select_runs(user=user, model_version=model_version, run_ids=run_ids)
    periods = _select_monitors(user=user, model_version=model_version, periods=monitors)
    title = _clean_title(title, model_version)
    created = False
    report = Report(
        id=uuid.uuid4(),
        team=model_version.team,
        model_version=model_version,
        title=title,
        status=ReportStatus.DRAFT,
        created_by=user,
        supersedes=supersedes,
    )
    try:
        with transaction.atomic():
            # Serialises the version numbers of one model version's reports.
            ModelVersion.objects.select_for_update().filter(pk=model_version.pk).first()
            latest = Report.objects.filter(model_version=model_version).aggregate(v=Max("version"))["v"] or 0
            report.version = latest + 1
            created = _render(report, runs, periods)
            report.save(force_insert=True)
            ReportRun.objects.bulk_create([ReportRun(report=report, run=run, position=i) for i, run in enumerate(runs)])
            _save_monitors(report, periods)
            if supersedes is not None and not supersedes.is_approved:
                # A new version of a draft carries its edits, and with them its editors.
                report.edited_by.add(*supersedes.edited_by.all())
            audit_record(
                actor=user,
                team=report.team,
                action="report.regenerated" if supersedes else "report.generated",
                obj=report,
                details={
                    "sha256": report.sha256,
                    "version": report.version,
                    "model_version": str(model_version.pk),
                    "model_sha256": model_version.sha256,
                    "runs": [str(r.pk) for r in runs],
                    "monitors": _monitors_audited(periods),
                    "supersedes": str(supersedes.pk) if supersedes else None,
                },
            )
    except BaseException:
        if created:
            blob_delete(report.pdf_key)
        raise
    return report


def _locked(*, user: User, report_id: object) -> Report:
    report = report_get(user=user, pk=report_id)
    return (
        Report.objects.select_for_update().select_related("team", "model_version__registered_model").get(pk=report.pk)
    )


def _refuse_if_approved(report: Report, doing: str) -> None:
    if report.is_approved:
        raise Conflict(
            f"report {report.pk} (version {report.version}) was approved on "
            f"{report.approved_at:%Y-%m-%d %H:%M} UTC and is immutable: it cannot be {doing}. "
            f"POST /api/reports/{report.pk}/regenerate/ makes a new version that supersedes it.",
            extra={"status": report.status, "regenerate": f"/api/reports/{report.pk}/regenerate/"},
        )


def report_update(
    *, user: User, report_id: object, title: str | None = None, run_ids: Any = None, monitors: Any = None
) -> Report:
    """Edit a draft (title, jobs) and render it again in place; an approved report is refused."""
    report = report_get(user=user, pk=report_id)
    _require_role(user=user, team=report.team, roles=REPORT_WRITE_ROLES, doing="editing reports")
    _refuse_if_approved(report, "modified")
    with transaction.atomic():
        report = _locked(user=user, report_id=report_id)
        _refuse_if_approved(report, "modified")  # approved while we waited for the lock
        if run_ids is None:
            runs = [rr.run for rr in report.report_runs.select_related("run__created_by", "run__dataset_version")]
        else:
            runs = _select_runs(user=user, model_version=report.model_version, run_ids=run_ids)
        if monitors is None:
            periods = _stored_monitors(report)
        else:
            periods = _select_monitors(user=user, model_version=report.model_version, periods=monitors)
        if title is not None:
            report.title = _clean_title(title, report.model_version)
        old_sha, old_key = report.sha256, report.pdf_key
        _render(report, runs, periods)
        if report.sha256 != old_sha:
            report.replaced_sha256 = [*(report.replaced_sha256 or []), old_sha]
        report.save()
        if run_ids is not None:
            report.report_runs.all().delete()
            ReportRun.objects.bulk_create([ReportRun(report=report, run=run, position=i) for i, run in enumerate(runs)])
        if monitors is not None:
            _save_monitors(report, periods)
        # The editor shaped what an approver signs: an author from now on (four eyes).
        report.edited_by.add(user)
        if old_key != report.pdf_key:
            _drop_blob_later(old_key)
        audit_record(
            actor=user,
            team=report.team,
            action="report.updated",
            obj=report,
            details={
                "sha256": report.sha256,
                "previous_sha256": old_sha,
                "runs": [str(r.pk) for r in runs],
                "monitors": _monitors_audited(periods),
                "changed": [
                    name
                    for name, given in (("title", title), ("runs", run_ids), ("monitors", monitors))
                    if given is not None
                ],
                "authors": report.author_names(),
            },
        )
    return report


#: The longest approval comment kept (it is printed in the report).
MAX_APPROVAL_COMMENT = 2000


def _clean_comment(comment: Any) -> str:
    if comment is None:
        return ""
    if not isinstance(comment, str):
        raise ValidationFailed("the approval comment must be text")
    comment = comment.strip()
    if len(comment) > MAX_APPROVAL_COMMENT:
        raise ValidationFailed(
            f"the approval comment is {len(comment)} characters long; at most {MAX_APPROVAL_COMMENT} are kept"
        )
    return comment


def _issue_approved(report: Report) -> tuple[str, bool]:
    """Render the approved report with its approval recorded in it: the draft's SHA-256, and whether the
    new PDF blob was newly stored (to remove it again if the approval rolls back).

    The content is the document the approver saw (not rebuilt from today's data), plus the approval block.
    """
    draft_sha, draft_key = report.sha256, report.pdf_key
    document = dict(report.document)
    document["approval"] = {
        "approved_by": report.approved_by.get_username() if report.approved_by else None,
        "approved_at": report.approved_at.isoformat() if report.approved_at else None,
        "comment": report.approval_comment,
        "draft_sha256": draft_sha,
    }
    html = render_html(document)
    pdf = render_pdf(html, report_id=report.pk)
    report.document, report.html = document, html
    report.sha256 = hashlib.sha256(pdf).hexdigest()
    report.size_bytes = len(pdf)
    report.pdf_key, created = _store_pdf(pdf, report.sha256)
    report.replaced_sha256 = [*(report.replaced_sha256 or []), draft_sha]
    if draft_key != report.pdf_key:
        _drop_blob_later(draft_key)
    return draft_sha, created


def report_approve(*, user: User, report_id: object, comment: Any = None, expected_sha256: str | None = None) -> Report:
    """Approve a draft: the approver, the date and their comment are printed in the PDF issued from then on.

    ``expected_sha256``: the draft the approver read; if it has been rendered again since, nothing is approved.
    """
    report = report_get(user=user, pk=report_id)
    _require_role(user=user, team=report.team, roles=REPORT_APPROVE_ROLES, doing="approving reports")
    comment = _clean_comment(comment)
    with transaction.atomic():
        report = _locked(user=user, report_id=report_id)
        if report.is_approved:
            raise Conflict(
                f"report {report.pk} was already approved by {report.approved_by} on "
                f"{report.approved_at:%Y-%m-%d %H:%M} UTC"
            )
        refusal = report_approval_refusal(user=user, report=report)
        if refusal is not None:
            raise Forbidden(refusal)
        if expected_sha256 is not None and expected_sha256 != report.sha256:
            raise Conflict(
                f"report {report.pk} changed since you opened it (its PDF is now {report.sha256[:12]}…, you read "
                f"{expected_sha256[:12]}…); read it again before approving"
            )
        report.status, report.approved_by, report.approved_at = ReportStatus.APPROVED, user, timezone.now()
        report.approval_comment = comment
        draft_sha, created = _issue_approved(report)
        try:
            report.save()
            _audit_approval(user=user, report=report, draft_sha=draft_sha, comment=comment)
        except BaseException:
            if created:
                blob_delete(report.pdf_key)
            raise
    return report


def _audit_approval(*, user: User, report: Report, draft_sha: str, comment: str) -> None:
    audit_record(
        actor=user,
        team=report.team,
        action="report.approved",
        obj=report,
        details={
            "sha256": report.sha256,
            "draft_sha256": draft_sha,
            "comment": comment,
            "version": report.version,
            "model_version": str(report.model_version_id),
            "author": report.created_by.username if report.created_by else None,
            # Everyone who generated it or changed its content since; self-approval covers them all.
            "authors": report.author_names(),
            "self_approved": user.pk in report.author_ids(),
        },
    )


def report_regenerate(*, user: User, report_id: object, title: str | None = None, run_ids: Any = None) -> Report:
    """The next version of a report, over the same (or newly chosen) jobs and the same monitors' periods;
    it supersedes the old one."""
    report = report_get(user=user, pk=report_id)
    if run_ids is None:
        run_ids = [str(pk) for pk in report.report_runs.values_list("run_id", flat=True)]
    return report_generate(
        user=user,
        model_version_id=report.model_version_id,
        run_ids=run_ids,
        title=report.title if title is None else title,
        supersedes=report,
        monitors=[{"monitor": str(m.pk), "start": s, "end": e} for m, s, e in _stored_monitors(report)],
    )


def report_delete(*, user: User, report_id: object) -> None:
    """Delete a draft (its author or an owner); approved reports are kept."""
    report = report_get(user=user, pk=report_id)
    role = _require_role(user=user, team=report.team, roles=REPORT_WRITE_ROLES, doing="deleting reports")
    if role != Role.OWNER and report.created_by_id != user.pk:
        raise Forbidden("only the report's author or a team owner can delete a draft report")
    _refuse_if_approved(report, "deleted")
    with transaction.atomic():
        report = _locked(user=user, report_id=report_id)
        _refuse_if_approved(report, "deleted")
        later = report.superseded_by.first()
        if later is not None:
            raise Conflict(f"report version {later.version} ({later.pk}) supersedes this one; delete that first")
        details = {"sha256": report.sha256, "version": report.version, "model_version": str(report.model_version_id)}
        key, pk, team = report.pdf_key, report.pk, report.team
        report.delete()
        _drop_blob_later(key)
        audit_record(actor=user, team=team, action="report.deleted", obj=("reports.report", pk), details=details)
