from __future__ import annotations

import os
import uuid
from typing import Any

from django.db.models import Prefetch, QuerySet

from evalsvc.core.exceptions import ValidationFailed
from evalsvc.core.users import AnyUser
from evalsvc.registry.storage import hash_file
from evalsvc.teams.models import Role, Team
from evalsvc.teams.selectors import get_scoped, role_for, scope_to_user, team_get_for_user

from .models import Report, ReportMonitor, ReportPolicy, ReportRun
from .render import claimed_report_id

#: May generate, edit (drafts) and regenerate reports.
REPORT_WRITE_ROLES = frozenset({Role.OWNER, Role.EDITOR, Role.AUDITOR})
#: May approve a report.
REPORT_APPROVE_ROLES = frozenset({Role.OWNER, Role.AUDITOR})

_RELATED = ("team", "model_version__registered_model", "created_by", "approved_by", "supersedes")


#: What a list of reports leaves unread: the stored HTML and JSON document (the report itself, by link).
_LIST_DEFERRED = ("html", "document", "replaced_sha256")


def reports_for_user(*, user: AnyUser, team: str | None = None, model_version: str | None = None) -> QuerySet[Report]:
    """The reports the user may see, as their list shows them: a fixed number of queries per page."""
    qs = scope_to_user(
        Report.objects.select_related("team", "model_version__registered_model", "created_by", "approved_by")
        .defer(*_LIST_DEFERRED)
        .prefetch_related(
            Prefetch("report_runs", queryset=ReportRun.objects.only("report_id", "run_id", "position")),
            Prefetch(
                "report_monitors",
                queryset=ReportMonitor.objects.only("report_id", "monitor_id", "start", "end", "position"),
            ),
            Prefetch("superseded_by", queryset=Report.objects.only("pk", "supersedes_id")),
            "edited_by",
        ),
        user=user,
    )
    if team:
        qs = qs.filter(team=team_get_for_user(user=user, team=team))
    if model_version:
        try:
            qs = qs.filter(model_version_id=uuid.UUID(str(model_version)))
        except ValueError:
            raise ValidationFailed(f"model_version {model_version!r} is not a model version id") from None
    return qs


def report_get(*, user: AnyUser, pk: object) -> Report:
    return get_scoped(Report.objects.select_related(*_RELATED), user=user, pk=pk, what="report")


def report_thresholds(*, team: Team) -> dict[str, dict[str, float]]:
    return ReportPolicy.objects.filter(team=team).values_list("thresholds", flat=True).first() or {}


def self_approval_allowed(*, team: Team) -> bool:
    """Whether the team lets a report's author approve it (off unless an owner turned it on)."""
    return bool(ReportPolicy.objects.filter(team=team).values_list("allow_self_approval", flat=True).first())


def report_approval_refusal(*, user: AnyUser, report: Report) -> str | None:
    """Why ``user`` may not approve ``report`` for its role or authorship; ``None`` if they may."""
    role = role_for(user=user, team=report.team)
    if role not in REPORT_APPROVE_ROLES:
        needed = " or ".join(sorted(REPORT_APPROVE_ROLES))
        return f"your role in team {report.team.slug!r} is {role}; approving reports needs {needed}"
    if user.pk in report.author_ids() and not self_approval_allowed(team=report.team):
        what = (
            "you generated this report"
            if report.created_by_id == user.pk
            else "you changed this report's content (title or jobs) since it was generated"
        )
        return (
            f"{what}, so another owner or auditor of the team must approve it (four eyes); "
            "a team owner can allow authors to approve their own reports in the team's report policy"
        )
    return None


def report_can_approve(*, user: AnyUser, report: Report) -> bool:
    return report_approval_refusal(user=user, report=report) is None


def report_verify(*, user: AnyUser, path: str) -> dict[str, Any]:
    """Is the file at `path` a report evalsvc issued, exactly as issued?

    Only identical bytes are: the SHA-256 must be a stored report's. Holding
    those bytes already shows the report's contents, so anyone signed in gets
    the answer and the approval; members of the report's team get its details.
    """
    sha256, _ = hash_file(path)
    report = Report.objects.select_related(*_RELATED).filter(sha256=sha256).order_by("created_at").first()
    if report is None:
        return _not_issued(user=user, path=path, sha256=sha256)
    body: dict[str, Any] = {
        "issued": True,
        "sha256": sha256,
        "report": str(report.pk),
        "version": report.version,
        "status": report.status,
        "approved": report.is_approved,
        "approved_at": report.approved_at.isoformat() if report.approved_at else None,
    }
    if role_for(user=user, team=report.team) is not None:
        version = report.model_version
        body.update(
            {
                "title": report.title,
                "team": report.team.slug,
                "model_version": {
                    "id": str(version.pk),
                    "name": version.registered_model.name,
                    "version": version.version,
                    "sha256": version.sha256,
                },
                "generated_by": report.created_by.get_username(),
                "generated_at": report.created_at.isoformat(),
                "approved_by": report.approved_by.get_username() if report.approved_by else None,
                "superseded_by": [str(pk) for pk in report.superseded_by.values_list("pk", flat=True)],
            }
        )
    status = "approved" if report.is_approved else "a draft, not approved"
    body["detail"] = f"issued by evalsvc: report {report.pk} version {report.version}, {status}"
    return body


def _not_issued(*, user: AnyUser, path: str, sha256: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "issued": False,
        "sha256": sha256,
        "detail": "not issued by evalsvc: no report it issued has exactly these bytes",
    }
    with open(path, "rb") as handle:
        # The file identifier sits in the trailer, at the very end.
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - 65536))
        claimed = claimed_report_id(handle.read())
    if claimed is None:
        return body
    named = scope_to_user(Report.objects.all(), user=user).filter(pk=claimed).first()
    if named is None:
        body["detail"] += "; the file names a report id you cannot see"
    elif named.is_approved and sha256 == ((named.document or {}).get("approval") or {}).get("draft_sha256"):
        body["claims_report"] = str(named.pk)
        body["detail"] = (
            f"the draft of report {named.pk} (version {named.version}) as it stood when it was approved; the "
            f"approved report, with its approval recorded in it, is the PDF with SHA-256 {named.sha256}"
        )
    elif sha256 in (named.replaced_sha256 or []):
        body["claims_report"] = str(named.pk)
        body["detail"] = (
            f"an earlier rendering of draft report {named.pk}, replaced when the draft was edited; "
            "it is not the current report and was never approved"
        )
    else:
        body["claims_report"] = str(named.pk)
        body["detail"] += (
            f"; the file says it is report {named.pk} (version {named.version}), whose issued SHA-256 is "
            f"{named.sha256}: this copy was changed after it was issued"
        )
    return body
