"""A monitor's history over a period, as a report section: its checks, verdicts, columns over time, alerts.

Read from the stored checks and alerts, never recomputed: the numbers are
the ones the check pages show.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from evalsvc.monitoring.models import Alert, Monitor, MonitorCheck

from .sections import MAX_TABLE_ROWS

#: Columns followed over time: those that drifted in a check of the period, else the closest to it.
MAX_FEATURES = 6


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _when(moment: datetime | None) -> str | None:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" if moment else None


def _verdict(check: MonitorCheck) -> str:
    if check.status == "failed":
        return "failed"
    if check.status != "succeeded":
        return str(check.status)
    return "drift" if check.drift else "no drift"


def _min_p(result: dict[str, Any]) -> float | None:
    values = [f["p_adjusted"] for f in result.get("features") or [] if f.get("p_adjusted") is not None]
    return min(values) if values else None


def _features_followed(checks: list[MonitorCheck]) -> list[str]:
    drifted: list[str] = []
    closest: dict[str, float] = {}
    for check in checks:
        for name in (check.result or {}).get("drifted_features") or []:
            if name not in drifted:
                drifted.append(name)
        for f in (check.result or {}).get("features") or []:
            if f.get("p_adjusted") is not None:
                closest[f["name"]] = min(closest.get(f["name"], 1.0), f["p_adjusted"])
    rest = [n for n in sorted(closest, key=lambda n: closest[n]) if n not in drifted]
    return (drifted + rest)[:MAX_FEATURES]


def monitor_history(monitor: Monitor, start: datetime, end: datetime) -> dict[str, Any]:
    """The monitor's section of a report: checks finished in [start, end), and the alerts they raised."""
    checks = list(
        MonitorCheck.objects.filter(monitor=monitor, created_at__gte=start, created_at__lt=end).order_by("created_at")
    )
    alerts = list(Alert.objects.filter(check_run__in=checks).order_by("created_at"))
    detectors = monitor.detectors or {}
    tables: list[dict[str, Any]] = []
    rows = []
    for check in checks:
        result = check.result or {}
        metrics = (result.get("performance") or {}).get("metrics") or {}
        rows.append([
            _when(check.finished_at or check.created_at), check.trigger, check.rows, _verdict(check),
            ", ".join(result.get("drift_sources") or []) or None,
            ", ".join(result.get("drifted_features") or []) or None, _min_p(result),
            (result.get("attribution") or {}).get("ndcg"), metrics.get("accuracy", metrics.get("mae")),
        ])  # fmt: skip
    tables.append({
        "title": "Checks in the period",
        "columns": ["finished", "trigger", "rows", "verdict", "drift in", "drifted columns", "min p (corrected)",
                    "attribution nDCG", "accuracy / MAE"],
        "rows": rows[-MAX_TABLE_ROWS:],
        **({"note": f"The last {MAX_TABLE_ROWS} of {len(rows)} checks."} if len(rows) > MAX_TABLE_ROWS else {}),
    })  # fmt: skip
    followed = _features_followed(checks)
    over_time = []
    for check in checks:
        by_name = {f["name"]: f for f in (check.result or {}).get("features") or []}
        for name in followed:
            f = by_name.get(name)
            if f is not None:
                over_time.append([
                    _when(check.finished_at or check.created_at), name, f.get("test"), f.get("p_value"),
                    f.get("p_adjusted"), f.get("psi"), f.get("wasserstein"), f.get("jensen_shannon"), f.get("drift"),
                ])  # fmt: skip
    tables.append({
        "title": "Columns over time: tests and effect sizes per check",
        "columns": ["finished", "column", "test", "p-value", "p (corrected)", "PSI", "Wasserstein", "Jensen–Shannon",
                    "drift"],
        "rows": over_time[-MAX_TABLE_ROWS:],
        "note": f"The columns that drifted in the period, then those closest to it (at most {MAX_FEATURES})."
        + (f" The last {MAX_TABLE_ROWS} of {len(over_time)} rows." if len(over_time) > MAX_TABLE_ROWS else ""),
    })  # fmt: skip
    tables.append({
        "title": "Alerts sent",
        "columns": ["raised", "event", "channel", "target", "status", "attempts", "sent"],
        "rows": [[_when(a.created_at), (a.payload or {}).get("event"), a.channel, a.target, a.status, a.attempts,
                  _when(a.sent_at)] for a in alerts][-MAX_TABLE_ROWS:],
    })  # fmt: skip
    drifted = sum(1 for c in checks if c.drift)
    failed = sum(1 for c in checks if c.status == "failed")
    return {
        "id": str(monitor.pk),
        "name": monitor.name,
        "model_version": str(monitor.model_version),
        "reference": str(monitor.reference_dataset),
        "start": _iso(start),
        "end": _iso(end),
        "schedule": monitor.schedule,
        "window_hours": monitor.window_hours,
        "detectors": {k: detectors[k] for k in sorted(detectors)},
        "counts": {
            "checks": len(checks),
            "drift": drifted,
            "failed": failed,
            "alerts": len(alerts),
            "alerts_sent": sum(1 for a in alerts if a.status == "sent"),
        },
        "tables": tables,
    }
