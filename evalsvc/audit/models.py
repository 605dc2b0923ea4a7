"""The append-only audit trail: one hash chain over every state-changing action.

Each entry carries the SHA-256 of its own canonical content and of the entry
before it, so editing, deleting or inserting a row breaks the chain at that
row. ``AuditChainHead`` is a single row holding the last sequence number and
hash: appenders lock it to serialise, and the verifier compares it with the
last entry so that cutting off the tail of the log is noticed too.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from evalsvc.teams.models import Team

#: prev_hash of the first entry.
GENESIS_HASH = "0" * 64


class AuditEntry(models.Model):
    seq = models.BigIntegerField(unique=True)
    #: Null for actions that belong to no team (a sign-in).
    team = models.ForeignKey(Team, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    #: Kept when the user is deleted: the hash covers ``actor_label``, not the id.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=200)
    #: Dotted, "<object>.<verb>": "model_version.registered", "report.approved".
    action = models.CharField(max_length=80, db_index=True)
    object_type = models.CharField(max_length=80, blank=True)
    object_id = models.CharField(max_length=80, blank=True, db_index=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(db_index=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["seq"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["team", "seq"], name="audit_team_seq")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor_label}"


class AuditChainHead(models.Model):
    """The one row (pk=1) that appenders lock; it names the last entry of the chain."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self) -> str:
        return f"audit chain head at #{self.last_seq}"
