"""Appending to the audit trail, and checking that nobody changed it since.

``audit_record`` is called explicitly by every service that changes state,
inside that service's transaction: the entry commits with the change or not
at all. Appends are serialised by locking the single chain-head row, so two
concurrent writers can never both claim the same sequence number or link to
the same predecessor (on SQLite the database lock does the same).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.cache import cache
from django.core.mail import mail_admins
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from evalsvc.core.exceptions import Unavailable
from evalsvc.core.users import AnyUser
from evalsvc.teams.models import Team

from .models import GENESIS_HASH, AuditChainHead, AuditEntry

SYSTEM_ACTOR = "system"

logger = logging.getLogger(__name__)


class AuditTrailBroken(Unavailable):
    """The next entry cannot be appended: the trail holds rows evalsvc did not write."""


# --- hashing ------------------------------------------------------------------


def _normalise(value: Any) -> Any:
    """JSON values that read back from the database exactly as written.

    PostgreSQL's jsonb turns 1e16 into 10000000000000000 and refuses NaN, so an
    integral float is stored as an int and a non-finite one as its text.
    """
    if isinstance(value, dict):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value.is_integer():
            return int(value)
    return value


def clean_details(details: dict[str, Any] | None) -> dict[str, Any]:
    # Through DjangoJSONEncoder first: UUIDs, datetimes and decimals become strings.
    return _normalise(json.loads(json.dumps(details or {}, cls=DjangoJSONEncoder)))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(entry: AuditEntry) -> str:
    """SHA-256 of the entry's canonical JSON (sorted keys, no whitespace, UTF-8)."""
    payload = {
        "seq": entry.seq,
        "team": str(entry.team_id) if entry.team_id else None,
        "actor": entry.actor_label,
        "action": entry.action,
        "object": [entry.object_type, entry.object_id],
        "details": _normalise(entry.details),
        "created_at": _iso(entry.created_at),
        "prev_hash": entry.prev_hash,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --- appending ----------------------------------------------------------------


def _locked_head() -> AuditChainHead:
    if not AuditChainHead.objects.filter(pk=1).exists():
        # The migration creates the head; a flushed test database has none. Start
        # from whatever the log already holds (ON CONFLICT DO NOTHING: a racing
        # writer may create it first).
        last = AuditEntry.objects.order_by("-seq").first()
        AuditChainHead.objects.bulk_create(
            [AuditChainHead(pk=1, last_seq=last.seq if last else 0, last_hash=last.hash if last else GENESIS_HASH)],
            ignore_conflicts=True,
        )
    return AuditChainHead.objects.select_for_update().get(pk=1)


def _team_id(team: Team | uuid.UUID | str | None) -> Any:
    if team is None or isinstance(team, uuid.UUID | str):
        return team
    return team.pk


def _object_ref(obj: Any) -> tuple[str, str]:
    if obj is None:
        return "", ""
    if isinstance(obj, tuple):  # ("registry.modelversion", pk) for rows already deleted
        return str(obj[0]), str(obj[1])
    if isinstance(obj, models.Model):
        return obj._meta.label_lower, str(obj.pk)
    raise TypeError(f"cannot audit an object of type {type(obj).__name__}")


def audit_record(
    *,
    actor: AnyUser | None,
    team: Team | uuid.UUID | str | None,
    action: str,
    obj: Any = None,
    details: dict[str, Any] | None = None,
    actor_label: str | None = None,
) -> AuditEntry:
    """Append one entry, linked to the one before it; joins the caller's transaction.

    ``actor`` is the user who acted, or None for the system (a worker, beat);
    ``actor_label`` then says which. ``obj`` is a model instance, or a
    ``(type, id)`` pair for something already gone.
    """
    if actor is not None and getattr(actor, "is_authenticated", False):
        label = actor_label or actor.get_username()
        actor_id = actor.pk
    else:
        label = actor_label or SYSTEM_ACTOR
        actor_id = None
    object_type, object_id = _object_ref(obj)
    with transaction.atomic():
        head = _locked_head()
        entry = AuditEntry(
            seq=head.last_seq + 1,
            team_id=_team_id(team),
            actor_id=actor_id,
            actor_label=label[:200],
            action=action,
            object_type=object_type,
            object_id=object_id,
            details=clean_details(details),
            # Taken under the lock, so time never runs backwards along the chain.
            created_at=timezone.now(),
            prev_hash=head.last_hash,
        )
        entry.hash = entry_hash(entry)
        try:
            with transaction.atomic():  # a savepoint: the caller's transaction is still usable
                entry.save(force_insert=True)
        except IntegrityError:
            _refuse_broken_trail(head=head, action=action)
        head.last_seq, head.last_hash = entry.seq, entry.hash
        head.save(update_fields=["last_seq", "last_hash"])
    return entry


def _refuse_broken_trail(*, head: AuditChainHead, action: str) -> None:
    """Stop the action with a clear message and alert the administrators once.

    A row already holds the next sequence number: someone wrote into the
    table past the chain head. Appending past it would bury the forgery in a
    valid-looking chain, and leaving the action unaudited would break the
    promise that every change is on record, so the action is refused (503)
    until an administrator has looked.
    """
    beyond = list(AuditEntry.objects.filter(seq__gt=head.last_seq).order_by("seq").values_list("seq", flat=True)[:5])
    first = beyond[0] if beyond else head.last_seq + 1
    message = (
        f"the audit trail is damaged: entry #{first} lies beyond the chain head (#{head.last_seq}) and was not "
        f"written by evalsvc, so this action ({action}) was not done. Every audited action is refused until an "
        "administrator runs `manage.py audit_verify` and removes the entries evalsvc did not write."
    )
    logger.critical("%s Entries beyond the head: %s", message, beyond)
    # One e-mail per forged entry and hour, however many requests run into it.
    if cache.add(f"evalsvc:audit-broken-alert:{first}", 1, timeout=3600):
        mail_admins("audit trail damaged: audited actions are refused", message, fail_silently=True)
    raise AuditTrailBroken(message)


# --- verifying ----------------------------------------------------------------


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_broken_seq: int | None = None
    reason: str = ""
    head_seq: int | None = None
    #: Keep a copy of this outside the database: with it, even a rewritten tail is caught.
    head_hash: str | None = None
    #: With ``team``: how many of the checked entries are that team's.
    team_entries: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def audit_verify(*, team: Team | None = None) -> VerifyResult:
    """Walk the whole chain in order and name the first entry where it breaks.

    The chain is one sequence over all teams, so a deleted entry is found only
    by walking all of it; ``team`` counts that team's entries and keeps other
    teams' entries out of the reason (their sequence numbers only).
    """
    head = AuditChainHead.objects.filter(pk=1).first()
    team_id = team.pk if team is not None else None
    expected_seq, prev_hash, checked, mine = 1, GENESIS_HASH, 0, 0

    def result(ok: bool, seq: int | None = None, reason: str = "") -> VerifyResult:
        return VerifyResult(
            ok=ok,
            checked=checked,
            first_broken_seq=seq,
            reason=reason,
            head_seq=head.last_seq if head else None,
            head_hash=head.last_hash if head else None,
            team_entries=mine if team is not None else None,
        )

    def describe(entry: AuditEntry) -> str:
        if team is None or entry.team_id == team_id:
            return f"entry #{entry.seq} ({entry.action} by {entry.actor_label} at {_iso(entry.created_at)})"
        return f"entry #{entry.seq} (of another team)"

    for entry in AuditEntry.objects.order_by("seq").iterator(chunk_size=2000):
        if entry.seq < expected_seq:
            return result(False, entry.seq, f"entry #{entry.seq} is out of sequence: it was inserted by hand")
        if entry.seq > expected_seq:
            missing = f"#{expected_seq}" if entry.seq == expected_seq + 1 else f"#{expected_seq} to #{entry.seq - 1}"
            return result(False, expected_seq, f"entry {missing} is missing: deleted from the log")
        if head is None or entry.seq > head.last_seq:
            return result(
                False,
                entry.seq,
                f"{describe(entry)} lies beyond the chain head (#{head.last_seq if head else 0}): "
                "it was not written by evalsvc",
            )
        if entry.prev_hash != prev_hash:
            return result(
                False,
                entry.seq,
                f"{describe(entry)} does not link to entry #{entry.seq - 1}: "
                "the entry before it was rewritten or replaced",
            )
        if entry_hash(entry) != entry.hash:
            return result(False, entry.seq, f"{describe(entry)} was changed after it was written")
        checked += 1
        mine += team is not None and entry.team_id == team_id
        expected_seq, prev_hash = entry.seq + 1, entry.hash
    last_seq = expected_seq - 1
    if head is not None and (head.last_seq != last_seq or head.last_hash != prev_hash):
        if head.last_seq > last_seq:
            return result(
                False, last_seq + 1, f"entries #{last_seq + 1} to #{head.last_seq} are missing: the log was cut short"
            )
        return result(False, last_seq, "the last entry is not the one the chain head names")
    return result(True)
