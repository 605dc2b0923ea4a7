"""Check the audit trail's hash chain; exit status 1 names the first broken entry."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from evalsvc.audit.models import AuditEntry
from evalsvc.audit.services import audit_verify
from evalsvc.teams.models import Team


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain. Exit status 0: intact; 1: broken (the first broken entry is named)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--team", help="Also count this team's entries (slug); the whole chain is always walked.")
        parser.add_argument(
            "--anchor",
            action="append",
            default=[],
            metavar="SEQ:HASH",
            help="A head hash printed earlier and kept elsewhere: entry SEQ must still have it (repeatable).",
        )

    def handle(self, *args: Any, team: str | None = None, anchor: list[str], **options: Any) -> None:
        found = None
        if team:
            found = Team.objects.filter(slug=team).first()
            if found is None:
                raise CommandError(f"no team with slug {team!r}")
        result = audit_verify(team=found)
        if not result.ok:
            raise CommandError(
                f"audit chain BROKEN at entry #{result.first_broken_seq}: {result.reason} "
                f"({result.checked} entries verified before it)",
                returncode=1,
            )
        for item in anchor:
            seq, _, expected = item.partition(":")
            if not seq.isdigit() or len(expected) != 64:
                raise CommandError(f"--anchor {item!r}: expected SEQ:HASH (the 64 hex digits audit_verify printed)")
            stored = AuditEntry.objects.filter(seq=int(seq)).values_list("hash", flat=True).first()
            if stored != expected:
                raise CommandError(
                    f"audit chain BROKEN at entry #{seq}: it no longer has the hash recorded for it; "
                    "the log was rewritten from there on",
                    returncode=1,
                )
        mine = f", {result.team_entries} of team {team}" if found is not None else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"audit chain intact: {result.checked} entries{mine}, head #{result.head_seq} {result.head_hash}"
            )
        )
