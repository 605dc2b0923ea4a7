"""Checks on what a monitor is given: its cron schedule, its webhook URL, its detector settings."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from celery.schedules import crontab
from django.conf import settings
from rest_framework import serializers

from evalsvc.core.exceptions import ValidationFailed
from evalsvc.evaluations.kinds.drift.params import DriftParams

DETECTOR_FIELDS = (
    "alpha", "correction", "numeric_test", "binary_test", "multivariate", "max_per_side", "n_permutations",
    "sample_rows", "max_int_categories", "seed", "column_kinds", "feature_columns", "prediction_drift",
    "prediction_rows", "attribution_drift", "attribution_rows", "attribution_nsamples", "attribution_threshold",
    "metrics_rows",
)  # fmt: skip
#: What a check does with the model, unless the monitor's detectors say otherwise.
MONITOR_DEFAULTS = {
    "prediction_drift": True, "prediction_rows": 10_000, "attribution_drift": True, "attribution_rows": 50,
    "attribution_nsamples": 512, "attribution_threshold": 0.9, "metrics_rows": 100_000,
}  # fmt: skip


class MonitorDetectors(DriftParams):
    """The drift job's settings, and what a check does with the model (prediction and attribution drift,
    metrics once labels arrive)."""

    prediction_drift = serializers.BooleanField(
        default=True, help_text="Compare the model's predicted classes on the window and the reference."
    )
    prediction_rows = serializers.IntegerField(min_value=10, max_value=1_000_000, default=10_000)
    attribution_drift = serializers.BooleanField(
        default=True, help_text="Compare global KernelSHAP importance on the window and the reference (nDCG)."
    )
    attribution_rows = serializers.IntegerField(
        min_value=5, max_value=2000, default=50, help_text="Rows explained on each side (the cost's bound)."
    )
    attribution_nsamples = serializers.IntegerField(min_value=16, max_value=100_000, default=512)
    attribution_threshold = serializers.FloatField(
        min_value=0.0, max_value=1.0, default=0.9, help_text="Attribution drift when nDCG falls below it."
    )
    metrics_rows = serializers.IntegerField(
        min_value=10, max_value=2_000_000, default=100_000, help_text="Labelled rows scored at most."
    )


def parse_cron(expression: str) -> dict[str, str]:
    """A five-field cron expression → CrontabSchedule fields; a clear 400 when it is not one."""
    fields = (expression or "").split()
    if len(fields) != 5:
        raise ValidationFailed(
            f"schedule must be a cron expression of five fields (minute hour day-of-month month day-of-week), "
            f"not {expression!r}"
        )
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    try:
        crontab(minute, hour, day_of_week=day_of_week, day_of_month=day_of_month, month_of_year=month_of_year)
    except Exception as exc:  # celery raises ValueError or its parser's own error
        raise ValidationFailed(f"schedule {expression!r} is not a valid cron expression: {exc}") from None
    return {
        "minute": minute,
        "hour": hour,
        "day_of_month": day_of_month,
        "month_of_year": month_of_year,
        "day_of_week": day_of_week,
    }


def check_webhook_url(url: str, *, service_host: str | None) -> str:
    """Refuse anything but http(s), and URLs that point at this service itself."""
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed(f"webhook_url must be an http or https URL, not {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    own = {h.lower() for h in getattr(settings, "EVALSVC_SELF_HOSTS", [])}
    if service_host:  # the host:port this request came in on
        here = urlsplit(f"//{service_host}")
        own.add(f"{(here.hostname or '').lower()}:{here.port or 80}")
    candidates = {f"{parts.hostname.lower()}:{port}"}
    try:  # 127.0.0.1 and localhost are one host
        if ipaddress.ip_address(parts.hostname).is_loopback:
            candidates.add(f"localhost:{port}")
    except ValueError:
        if parts.hostname.lower() == "localhost":
            candidates |= {f"127.0.0.1:{port}", f"[::1]:{port}"}
    if candidates & {h.lower() for h in own}:
        raise ValidationFailed("webhook_url points at this service itself; alerts must go elsewhere")
    return url


def clean_detectors(detectors: dict[str, Any], *, reference_id: str, columns: list[str]) -> dict[str, Any]:
    unknown = set(detectors) - set(DETECTOR_FIELDS)
    if unknown:
        raise ValidationFailed(f"detectors: unknown settings {', '.join(sorted(unknown))}")
    serializer = MonitorDetectors(data={**detectors, "reference_dataset": reference_id})
    if not serializer.is_valid():
        raise ValidationFailed("invalid detectors", extra={"errors": {"detectors": serializer.errors}})
    data = dict(serializer.validated_data)
    bad = [c for c in data.get("column_kinds", {}) if c not in columns]
    if bad:
        raise ValidationFailed(f"detectors.column_kinds names columns the monitor does not compare: {', '.join(bad)}")
    outside = [c for c in data.get("feature_columns") or [] if c not in columns]
    if outside:
        raise ValidationFailed(f"detectors.feature_columns: not compared by the monitor: {', '.join(outside)}")
    return {k: v for k, v in data.items() if k in DETECTOR_FIELDS}
