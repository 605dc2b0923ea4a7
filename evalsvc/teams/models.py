from __future__ import annotations

from django.conf import settings
from django.db import models

from evalsvc.core.models import UUIDModel


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    EDITOR = "editor", "Editor"
    VIEWER = "viewer", "Viewer"
    AUDITOR = "auditor", "Auditor"


#: Roles that may register artifacts and submit or cancel jobs.
WRITE_ROLES = frozenset({Role.OWNER, Role.EDITOR})


class Team(UUIDModel):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="one_membership_per_team")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} as {self.role}"


class Invitation(UUIDModel):
    """An owner's offer of a role in a team; the user becomes a member only by accepting it."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invitations")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="one_invitation_per_team")]

    def __str__(self) -> str:
        return f"{self.user} invited to {self.team} as {self.role}"


class TeamOwned(UUIDModel):
    """Base for every object that belongs to a team (and so is scoped by it)."""

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="+")

    class Meta:
        abstract = True
