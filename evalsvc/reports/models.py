from __future__ import annotations

from django.conf import settings
from django.db import models

from evalsvc.evaluations.models import EvaluationRun
from evalsvc.registry.models import ModelVersion
from evalsvc.teams.models import Team, TeamOwned


class ReportStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    APPROVED = "approved", "Approved"


class ReportPolicy(models.Model):
    """A team's report rules: pass/fail thresholds for summaries and who may approve.

    ``thresholds`` look like ``{"accuracy": {"min": 0.9}, "rmse": {"max": 60}}``.
    """

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="report_policy")
    thresholds = models.JSONField(default=dict, blank=True)
    allow_self_approval = models.BooleanField(
        default=False,
        help_text="Let a report's author approve it. Off (the default), another owner or auditor must: four eyes.",
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "report policies"

    def __str__(self) -> str:
        return f"report policy of {self.team}"


class Report(TeamOwned):
    """One rendering of an audit report: the stored PDF (by SHA-256), its HTML and its JSON document.

    An approved report never changes; a change is a new report (``version`` + 1)
    that ``supersedes`` it.
    """

    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="reports")
    runs = models.ManyToManyField(EvaluationRun, through="ReportRun", related_name="reports")
    title = models.CharField(max_length=300)
    #: Counts the reports of one model version: 1, 2, …
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=ReportStatus.choices, default=ReportStatus.DRAFT)
    sha256 = models.CharField(max_length=64, db_index=True)
    size_bytes = models.BigIntegerField()
    #: The PDF in the content-addressed artifact store.
    pdf_key = models.CharField(max_length=255)
    html = models.TextField()
    #: SHA-256s of earlier renderings of this draft, replaced by an edit.
    replaced_sha256 = models.JSONField(default=list, blank=True)
    document = models.JSONField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    #: Who changed the content (title, jobs) since it was generated: authors too, for the four-eyes rule.
    edited_by = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="+", blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    #: What the approver wrote when approving; printed in the approved PDF with their name and the date.
    approval_comment = models.TextField(blank=True, default="")
    supersedes = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="superseded_by"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["model_version", "version"], name="unique_report_version"),
        ]

    def __str__(self) -> str:
        return f"report {self.version} of {self.model_version}"

    @property
    def is_approved(self) -> bool:
        return self.status == ReportStatus.APPROVED

    def author_ids(self) -> set[int]:
        """Whoever generated this report or changed its content since: none of them approves it alone."""
        return {self.created_by_id, *self.edited_by.values_list("pk", flat=True)}

    def author_names(self) -> list[str]:
        # Sorted here, not by the database, so a list that prefetched the editors asks nothing more.
        editors = sorted(u.username for u in self.edited_by.all() if u.pk != self.created_by_id)
        return [self.created_by.username, *editors]


class ReportRun(models.Model):
    """A job included in a report, in report order; a run in a report cannot be deleted."""

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="report_runs")
    run = models.ForeignKey(EvaluationRun, on_delete=models.PROTECT, related_name="report_runs")
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["report", "position"]
        constraints = [models.UniqueConstraint(fields=["report", "run"], name="unique_run_per_report")]

    def __str__(self) -> str:
        return f"{self.run_id} in report {self.report_id}"


class ReportMonitor(models.Model):
    """A monitor's history over a period, included in a report; a monitor in a report cannot be deleted."""

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="report_monitors")
    monitor = models.ForeignKey("monitoring.Monitor", on_delete=models.PROTECT, related_name="report_monitors")
    start = models.DateTimeField()
    end = models.DateTimeField()
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["report", "position"]

    def __str__(self) -> str:
        return f"monitor {self.monitor_id} ({self.start:%Y-%m-%d} – {self.end:%Y-%m-%d}) in report {self.report_id}"
