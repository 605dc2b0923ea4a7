"""Monitor checks (from Celery beat or on demand) and alert delivery with retries."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from datetime import timedelta
from typing import Any

import pandas as pd
from celery import shared_task
from django.core.mail import send_mail
from django.utils import timezone

from evalsvc.monitoring import checks, ingest
from evalsvc.monitoring.models import Alert, AlertStatus, Monitor, ProductionBatch
from evalsvc.monitoring.signing import sign_webhook
from workers.engine.drift import detect_drift
from workers.engine.errors import EngineError
from workers.queues import CPU

from .drift import config_from_params, reference_profile

logger = logging.getLogger(__name__)

DEFAULTS = {
    "alpha": 0.05, "correction": "bonferroni", "numeric_test": "ks", "binary_test": "fisher", "multivariate": [],
    "max_per_side": 2000, "n_permutations": 100, "sample_rows": 100_000, "max_int_categories": 10, "seed": 0,
}  # fmt: skip


def _window_frame(monitor: Monitor, start, end) -> pd.DataFrame:
    batches = ProductionBatch.objects.filter(monitor=monitor, created_at__gt=start, created_at__lte=end)
    frames = [ingest.read_batch(b.data) for b in batches.order_by("created_at").iterator()]
    if not frames:
        return pd.DataFrame(columns=monitor.columns)
    return pd.concat(frames, ignore_index=True)


def _as_profiled(frame: pd.DataFrame, profile) -> pd.DataFrame:
    """Stored nullable columns as the engine reads data sets: numeric as float64, others as objects."""
    for name, column in profile.columns.items():
        if column.kind == "numeric":
            frame[name] = frame[name].astype("float64")
        elif str(frame[name].dtype) in ("Int64", "boolean", "string"):
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame


@shared_task(bind=True, name="evalsvc.monitor_check", queue=CPU, acks_late=True, soft_time_limit=3600, time_limit=3660)
def monitor_check(self: Any, monitor_id: str, check_id: str | None = None) -> str:
    monitor = Monitor.objects.select_related("team", "reference_dataset").filter(pk=monitor_id).first()
    if monitor is None or (check_id is None and not monitor.enabled):
        return "skipped"
    check = checks.check_start(monitor=monitor, check_id=check_id, trigger="on_demand" if check_id else "schedule")
    end = timezone.now()
    start = end - timedelta(hours=monitor.window_hours)
    params = {**DEFAULTS, **monitor.detectors}
    rows = 0
    try:
        frame = _window_frame(monitor, start, end)
        rows = int(frame.shape[0])
        if rows == 0:
            raise EngineError(f"no production rows arrived in the last {monitor.window_hours} h")
        profile = reference_profile(
            monitor.reference_dataset,
            monitor.columns,
            kinds=params.get("column_kinds") or {},
            max_int_categories=params["max_int_categories"],
            sample_rows=params["sample_rows"],
            seed=params["seed"],
        )
        report = detect_drift(profile, _as_profiled(frame, profile), config_from_params(params))
    except EngineError as exc:
        checks.check_finish(check=check, window=(start, end), rows=rows, error=exc.message)
        return "failed"
    except Exception as exc:
        logger.exception("monitor check %s failed", check.pk)
        checks.check_finish(check=check, window=(start, end), rows=rows, error=f"internal error: {exc}")
        return "failed"
    checks.check_finish(check=check, window=(start, end), rows=rows, result=report.to_dict())
    return "drift" if report.drift else "no drift"


class DeliveryFailed(Exception):
    """A transient delivery failure: retried with back-off."""


def _post_webhook(alert: Alert) -> None:
    body = json.dumps(alert.payload, sort_keys=True).encode()
    headers = {"Content-Type": "application/json", **sign_webhook(alert.monitor.webhook_secret, body)}
    request = urllib.request.Request(alert.target, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            if not 200 <= response.status < 300:
                raise DeliveryFailed(f"HTTP {response.status}")
    except urllib.error.HTTPError as exc:
        raise DeliveryFailed(f"HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryFailed(str(getattr(exc, "reason", exc))) from exc


def _send_email(alert: Alert) -> None:
    payload = alert.payload
    subject = f"[evalsvc] {payload['monitor']['name']}: " + ("drift" if payload["event"] == "drift" else "check failed")
    lines = [f"Monitor {payload['monitor']['name']} (team {payload['monitor']['team']})."]
    check = payload["check"]
    if payload["event"] == "drift":
        lines.append(f"Drift in: {', '.join(check.get('drifted_features') or []) or 'the multivariate detectors'}.")
    else:
        lines.append(f"The check failed: {check.get('error')}")
    lines.append(f"Window {check['window_start']} – {check['window_end']}, {check['rows']} rows.")
    try:
        send_mail(subject, "\n".join(lines), None, [alert.target])
    except OSError as exc:
        raise DeliveryFailed(str(exc)) from exc


@shared_task(
    bind=True,
    name="evalsvc.alert_send",
    queue=CPU,
    acks_late=True,
    max_retries=5,
    retry_backoff=2,
    retry_backoff_max=600,
    retry_jitter=False,
)
def alert_send(self: Any, alert_id: str) -> str:
    alert = Alert.objects.select_related("monitor", "monitor__team").filter(pk=alert_id).first()
    if alert is None or alert.status != AlertStatus.PENDING:
        return "skipped"
    try:
        _post_webhook(alert) if alert.channel == "webhook" else _send_email(alert)
    except DeliveryFailed as exc:
        final = self.request.retries >= self.max_retries
        checks.alert_outcome(alert=alert, sent=False, error=str(exc), final=final)
        if final:
            return "failed"
        # Exponential back-off: 2, 4, 8, ... seconds, at most 10 minutes.
        raise self.retry(exc=exc, countdown=min(600, 2 ** (self.request.retries + 1))) from exc
    checks.alert_outcome(alert=alert, sent=True)
    return "sent"
