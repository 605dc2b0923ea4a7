"""Writes a check's outcome and the alerts it raises (called by the worker's tasks)."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from celery import current_app
from django.db import transaction
from django.utils import timezone

from evalsvc.audit.services import audit_record
from workers.queues import CPU

from .models import Alert, AlertStatus, CheckStatus, Monitor, MonitorCheck, ProfileStatus

ALERT_TASK = "evalsvc.alert_send"


def profile_outcome(*, monitor_id: Any, key: str, error: str = "", adopt: bool = False) -> bool:
    """Record a reference profile's build, unless the monitor's reference or settings changed meanwhile.

    ``adopt``: a check built it for a monitor that never had one queued (created before set-time builds).
    """
    status = ProfileStatus.FAILED if error else ProfileStatus.READY
    updated = Monitor.objects.filter(pk=monitor_id, profile_key__in=[key, ""] if adopt else [key]).update(
        profile_key=key, profile_status=status, profile_error=error, profile_updated_at=timezone.now()
    )
    return bool(updated)


def check_start(*, monitor: Monitor, check_id: str | None, trigger: str) -> MonitorCheck:
    if check_id:
        return MonitorCheck.objects.get(pk=check_id, monitor=monitor)
    return MonitorCheck.objects.create(monitor=monitor, trigger=trigger)


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    features = result.get("features") or []
    performance = (result.get("performance") or {}).get("metrics") or {}
    return {
        "drift_sources": result.get("drift_sources") or (["features"] if result.get("drift") else []),
        "drifted_features": result.get("drifted_features") or [],
        "prediction_p_value": (result.get("prediction") or {}).get("p_value"),
        "attribution_ndcg": (result.get("attribution") or {}).get("ndcg"),
        "metrics": {k: performance[k] for k in ("accuracy", "f1", "roc_auc", "mae", "rmse") if k in performance},
        "min_p_adjusted": min((f["p_adjusted"] for f in features if f.get("p_adjusted") is not None), default=None),
        "max_psi": max((f["psi"] for f in features if f.get("psi") is not None), default=None),
    }


@transaction.atomic
def check_finish(
    *,
    check: MonitorCheck,
    window: tuple[datetime, datetime],
    rows: int,
    result: dict[str, Any] | None = None,
    error: str = "",
) -> list[Alert]:
    """Store the outcome; a check that found drift or failed raises one alert per channel."""
    check.window_start, check.window_end = window
    check.rows = rows
    check.finished_at = timezone.now()
    if error:
        check.status, check.error, check.drift = CheckStatus.FAILED, error, None
    else:
        check.status, check.result, check.drift = CheckStatus.SUCCEEDED, result or {}, bool((result or {}).get("drift"))
    check.save()
    if not (error or check.drift):
        return []
    monitor = check.monitor
    payload = {
        "event": "drift" if check.drift else "check_failed",
        "monitor": {"id": str(monitor.pk), "name": monitor.name, "team": monitor.team.slug},
        "check": {
            "id": str(check.pk),
            "trigger": check.trigger,
            "window_start": check.window_start.isoformat(),
            "window_end": check.window_end.isoformat(),
            "rows": rows,
            "error": error,
            **_summary(check.result),
        },
    }
    alerts = []
    targets = [("webhook", monitor.webhook_url)] if monitor.webhook_url else []
    targets += [("email", address) for address in monitor.email_to]
    for channel, target in targets:
        alert = Alert.objects.create(monitor=monitor, check_run=check, channel=channel, target=target)
        alert.payload = {**payload, "delivery": str(alert.pk)}
        alert.save(update_fields=["payload"])
        alerts.append(alert)
        transaction.on_commit(partial(current_app.send_task, ALERT_TASK, args=[str(alert.pk)], queue=CPU))
    return alerts


def alert_outcome(*, alert: Alert, sent: bool, error: str = "", final: bool = True) -> None:
    """Record one delivery attempt; the audit trail gets the final outcome."""
    alert.attempts += 1
    alert.last_error = error
    if sent:
        alert.status, alert.sent_at = AlertStatus.SENT, timezone.now()
    elif final:
        alert.status = AlertStatus.FAILED
    alert.save(update_fields=["attempts", "last_error", "status", "sent_at"])
    if sent or final:
        audit_record(
            actor=None,
            actor_label="alerts",
            team=alert.monitor.team_id,
            action="monitor.alert_sent" if sent else "monitor.alert_failed",
            obj=alert.monitor,
            details={
                "alert": str(alert.pk),
                "check": str(alert.check_run_id),
                "channel": alert.channel,
                "target": alert.target,
                "attempts": alert.attempts,
                "event": alert.payload.get("event"),
                "error": error,
            },
        )
