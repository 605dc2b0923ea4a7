from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from evalsvc.registry.models import DatasetVersion, ModelVersion
from evalsvc.teams.models import TeamOwned

from .headline import HEADLINE_MAX, run_headline


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


#: The state machine: which statuses a run may move to from each status.
TRANSITIONS: dict[str, frozenset[str]] = {
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED, RunStatus.FAILED}),
    # running → queued happens when a transient failure is retried.
    RunStatus.RUNNING: frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.QUEUED}),
    RunStatus.SUCCEEDED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}
FINISHED = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})


class EvaluationRun(TeamOwned):
    """One job: a kind, its parameters, and (when done) its result as JSON."""

    kind = models.CharField(max_length=32, db_index=True)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="runs")
    dataset_version = models.ForeignKey(
        DatasetVersion, on_delete=models.PROTECT, related_name="runs", null=True, blank=True
    )
    params = models.JSONField(default=dict)
    result = models.JSONField(null=True, blank=True)
    #: One short line from the result (``run_headline``), so that lists never read the result itself.
    headline = models.CharField(max_length=HEADLINE_MAX, blank=True)
    #: Fraction done in [0, 1] and a short line saying what is happening.
    progress = models.FloatField(default=0.0)
    progress_message = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)
    queue = models.CharField(max_length=32, blank=True)
    celery_task_id = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    #: Where it ran: backend, version, provider, device, precision, host.
    environment = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        # A page of a team's runs, newest first (optionally of one status), is read from the index in order:
        # the database stops after the page instead of sorting every run of the team.
        indexes = [
            models.Index(fields=["team", "-created_at", "-id"], name="run_team_newest"),
            models.Index(fields=["team", "status", "-created_at", "-id"], name="run_team_status_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} run {self.id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The headline follows the result on every save that writes the result.
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "result" in update_fields:
            self.headline = run_headline(self.result)
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "headline"}
        super().save(*args, **kwargs)

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED


class RunChunk(models.Model):
    """One row range of a run split across workers: its progress and whether its partial result is stored.

    The partial result itself lies in storage under ``storage_key``; a chunk
    run twice writes the same key again, so running it twice is harmless.
    """

    run = models.ForeignKey(EvaluationRun, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    start = models.BigIntegerField()
    stop = models.BigIntegerField()
    rows_done = models.BigIntegerField(default=0)
    done = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    storage_key = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="unique_run_chunk")]

    def __str__(self) -> str:
        return f"chunk {self.index} of run {self.run_id}"
