"""Monitors: a model version watched against a reference, production batches, checks and alerts."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from evalsvc.core.models import UUIDModel
from evalsvc.teams.models import TeamOwned


class ProfileStatus(models.TextChoices):
    BUILDING = "building"
    READY = "ready"
    FAILED = "failed"


class Monitor(TeamOwned):
    name = models.CharField(max_length=200)
    model_version = models.ForeignKey("registry.ModelVersion", on_delete=models.PROTECT, related_name="+")
    reference_dataset = models.ForeignKey("registry.DatasetVersion", on_delete=models.PROTECT, related_name="+")
    #: The compared columns (the reference's); production batches must carry exactly these.
    columns = models.JSONField(default=list)
    #: Drift settings, as the drift job's params (alpha, correction, tests, multivariate, caps).
    detectors = models.JSONField(default=dict)
    #: Checks look at the batches received in the last `window_hours`.
    window_hours = models.PositiveIntegerField(default=24)
    #: Five-field cron expression (minute hour day-of-month month day-of-week), in CELERY_TIMEZONE.
    schedule = models.CharField(max_length=120)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    webhook_url = models.URLField(max_length=500, blank=True)
    #: Key of the HMAC-SHA256 signature on webhook alerts; shown once, at creation.
    webhook_secret = models.CharField(max_length=128, blank=True)
    email_to = models.JSONField(default=list, blank=True)
    #: A column every batch carries that names its rows, so labels can be sent later by row id
    #: (blank: labels name a batch and come in its row order).
    row_id_column = models.CharField(max_length=200, blank=True, default="")
    #: "classification" or "regression": the metrics a check adds once labels arrive (inferred from the model).
    task = models.CharField(max_length=16, blank=True, default="")
    enabled = models.BooleanField(default=True)
    #: The reference's profile (sorted columns, grids, counts) is built by a worker when the reference or
    #: the settings it depends on are set, and cached; ``profile_key`` names the inputs it was built from.
    profile_status = models.CharField(max_length=16, choices=ProfileStatus.choices, default=ProfileStatus.BUILDING)
    profile_error = models.TextField(blank=True, default="")
    profile_key = models.CharField(max_length=64, blank=True, default="")
    profile_updated_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="unique_monitor_name_per_team")]

    def __str__(self) -> str:
        return self.name


class ProductionBatch(UUIDModel):
    """Rows received for a monitor in one request, stored whole (Parquet bytes) with their arrival time."""

    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="batches")
    rows = models.PositiveIntegerField()
    size_bytes = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    data = models.BinaryField()
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-created_at"]


class ProductionRow(models.Model):
    """Where a row id was received: its batch and position, written with the batch in one transaction.

    Labels sent by row id find their rows with one indexed lookup; a row id is received once per monitor.
    """

    id = models.BigAutoField(primary_key=True)
    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="+")
    row_id = models.CharField(max_length=200)
    batch = models.ForeignKey(ProductionBatch, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["monitor", "row_id"], name="unique_row_id_per_monitor")]

    def __str__(self) -> str:
        return f"{self.row_id} (batch {self.batch_id}, row {self.position})"


class ProductionLabels(UUIDModel):
    """True labels for rows already received, sent later: by row id, or for one batch in its row order.

    ``data`` is Parquet with a ``row_id`` or a ``position`` column and a
    ``label`` column, stored whole in one row; a later label for the same row wins.
    """

    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="labels")
    #: The batch the labels are for, in its row order; empty when they name rows by id.
    batch = models.ForeignKey(ProductionBatch, null=True, blank=True, on_delete=models.CASCADE, related_name="labels")
    rows = models.PositiveIntegerField()
    data = models.BinaryField()
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "production labels"


class CheckStatus(models.TextChoices):
    QUEUED = "queued"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class MonitorCheck(UUIDModel):
    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="checks")
    trigger = models.CharField(max_length=16, default="schedule")  # schedule | on_demand
    status = models.CharField(max_length=16, choices=CheckStatus.choices, default=CheckStatus.QUEUED)
    window_start = models.DateTimeField(null=True)
    window_end = models.DateTimeField(null=True)
    rows = models.PositiveIntegerField(default=0)
    drift = models.BooleanField(null=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True)

    class Meta:
        ordering = ["-created_at"]


class AlertStatus(models.TextChoices):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Alert(UUIDModel):
    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="alerts")
    check_run = models.ForeignKey(MonitorCheck, on_delete=models.CASCADE, related_name="alerts")
    channel = models.CharField(max_length=16)  # webhook | email
    target = models.CharField(max_length=500)
    status = models.CharField(max_length=16, choices=AlertStatus.choices, default=AlertStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    payload = models.JSONField(default=dict)
    sent_at = models.DateTimeField(null=True)

    class Meta:
        ordering = ["-created_at"]
