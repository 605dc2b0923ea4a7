"""Reading the audit trail: owners and auditors of a team read that team's entries."""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, time

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from evalsvc.core.csvcells import csv_safe
from evalsvc.core.exceptions import Forbidden, ValidationFailed
from evalsvc.core.users import AnyUser
from evalsvc.teams.models import Role, Team
from evalsvc.teams.selectors import role_for, team_get_for_user

from .models import AuditEntry

#: Who may read a team's audit trail and check its chain.
AUDIT_READ_ROLES = frozenset({Role.OWNER, Role.AUDITOR})


def audit_team_for_user(*, user: AnyUser, team: str) -> Team:
    """The team, if the user may read its audit trail: 404 for strangers, 403 for other roles."""
    found = team_get_for_user(user=user, team=team)
    role = role_for(user=user, team=found)
    if role not in AUDIT_READ_ROLES:
        raise Forbidden(f"your role in team {found.slug!r} is {role}; the audit trail is for owners and auditors")
    return found


def audit_teams_for_user(*, user: AnyUser) -> QuerySet[Team]:
    if not user.is_authenticated:
        return Team.objects.none()
    return Team.objects.filter(memberships__user=user, memberships__role__in=AUDIT_READ_ROLES).distinct()


def _moment(value: str, *, end: bool) -> datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            raise ValidationFailed(f"{value!r} is not a date (YYYY-MM-DD) or an ISO 8601 date-time")
        # A bare date covers the whole day: "until=2026-01-31" includes the 31st.
        parsed = datetime.combine(day, time.max if end else time.min)
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    return parsed


def audit_entries_for_user(
    *,
    user: AnyUser,
    team: str | None = None,
    action: str | None = None,
    actor: str | None = None,
    object_id: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> QuerySet[AuditEntry]:
    """Entries of the teams the user audits, newest first.

    Only the team's own events: a sign-in belongs to the user who signed in,
    not to any team (``audit_sign_ins_for_user``), so joining a team shows it
    nothing of a member's sign-ins, before or after.
    ``action`` matches exactly, or as a prefix when it ends with "." or "*".
    """
    teams = [audit_team_for_user(user=user, team=team)] if team else list(audit_teams_for_user(user=user))
    if not teams:
        return AuditEntry.objects.none()
    qs = AuditEntry.objects.filter(team__in=teams)
    if action:
        qs = (
            qs.filter(action__startswith=action.rstrip("*"))
            if action.endswith((".", "*"))
            else qs.filter(action=action)
        )
    if actor:
        qs = qs.filter(actor_label=actor)
    if object_id:
        qs = qs.filter(object_id=object_id)
    if since:
        qs = qs.filter(created_at__gte=_moment(since, end=False))
    if until:
        qs = qs.filter(created_at__lte=_moment(until, end=True))
    return qs.select_related("team").order_by("-seq")


def audit_sign_ins_for_user(*, user: AnyUser) -> QuerySet[AuditEntry]:
    """The user's own sign-ins, and failed attempts on their account, newest first."""
    if not user.is_authenticated:
        return AuditEntry.objects.none()
    own = Q(actor=user) | Q(object_type=user._meta.label_lower, object_id=str(user.pk))
    return AuditEntry.objects.filter(own, team__isnull=True, action__startswith="user.").order_by("-seq")


# --- CSV export ---------------------------------------------------------------

CSV_COLUMNS = [
    "seq", "created_at", "team", "actor", "action", "object_type", "object_id", "details", "prev_hash", "hash",
]  # fmt: skip


def _row(entry: AuditEntry) -> list[str]:
    return [
        csv_safe(v)
        for v in (
            entry.seq,
            entry.created_at.isoformat(),
            entry.team.slug if entry.team else "",
            entry.actor_label,
            entry.action,
            entry.object_type,
            entry.object_id,
            json.dumps(entry.details, sort_keys=True, ensure_ascii=False),
            entry.prev_hash,
            entry.hash,
        )
    ]


def audit_csv_lines(queryset: QuerySet[AuditEntry]) -> Iterator[str]:
    """The entries as CSV, one line at a time (for a streaming response)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    rows = itertools.chain([CSV_COLUMNS], (_row(e) for e in queryset.iterator(chunk_size=2000)))
    for row in rows:
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
