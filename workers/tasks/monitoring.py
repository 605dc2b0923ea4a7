"""Monitor checks (from Celery beat or on demand) and alert delivery with retries."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from celery import shared_task
from django.core.mail import send_mail
from django.db.models import Q
from django.utils import timezone

from evalsvc.monitoring import checks, ingest
from evalsvc.monitoring.models import Alert, AlertStatus, Monitor, ProductionBatch, ProductionLabels, ProfileStatus
from evalsvc.monitoring.profile import profile_inputs, profile_key
from evalsvc.monitoring.signing import sign_webhook
from evalsvc.monitoring.validation import MONITOR_DEFAULTS
from workers.engine.drift import ReferenceProfile, detect_drift
from workers.engine.errors import EngineError
from workers.queues import CPU

from .drift import config_from_params, reference_profile, reference_profile_path
from .monitoring_model import model_checks

logger = logging.getLogger(__name__)

DEFAULTS = {
    "alpha": 0.05, "correction": "bonferroni", "numeric_test": "ks", "binary_test": "fisher", "multivariate": [],
    "max_per_side": 2000, "n_permutations": 100, "sample_rows": 100_000, "max_int_categories": 10, "seed": 0,
    **MONITOR_DEFAULTS,
}  # fmt: skip
#: Where each window row came from: its batch and its position in it (how labels sent for a batch find it).
BATCH, POSITION = "__batch", "__position"


def _window_frame(monitor: Monitor, start, end) -> pd.DataFrame:
    batches = ProductionBatch.objects.filter(monitor=monitor, created_at__gt=start, created_at__lte=end)
    frames = []
    for batch in batches.order_by("created_at").iterator():
        frame = ingest.read_batch(batch.data)
        frame[BATCH] = str(batch.pk)
        frame[POSITION] = np.arange(len(frame), dtype=np.int64)
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=[*monitor.columns, BATCH, POSITION])
    return pd.concat(frames, ignore_index=True)


def _labels(monitor: Monitor, frame: pd.DataFrame) -> tuple[pd.Series, dict[str, int]]:
    """Each window row's true label, where one is known: sent later by row id or for its batch (the latest
    wins), else the reference's label column when the batches carry it."""
    label = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    sources = {"in_batches": 0, "by_batch": 0, "by_row_id": 0}
    column = monitor.reference_dataset.label_column
    if column and column in frame.columns:
        known = frame[column].notna().to_numpy()
        label[known] = frame.loc[known, column].astype(object)
        sources["in_batches"] = int(known.sum())
    batch_ids = frame[BATCH].unique().tolist() if len(frame) else []
    records = ProductionLabels.objects.filter(monitor=monitor).filter(Q(batch_id__in=batch_ids) | Q(batch__isnull=True))
    by_batch, by_id = [], []
    for record in records.order_by("created_at").iterator():
        part = ingest.read_batch(record.data)
        if record.batch_id is not None:
            by_batch.append(part.assign(**{BATCH: str(record.batch_id)}).rename(columns={"position": POSITION}))
        else:
            by_id.append(part)
    if by_batch:
        table = pd.concat(by_batch, ignore_index=True).drop_duplicates([BATCH, POSITION], keep="last")
        merged = frame[[BATCH, POSITION]].merge(table, how="left", on=[BATCH, POSITION])
        hit = merged["label"].notna().to_numpy()
        label[hit] = merged.loc[hit, "label"].astype(object).to_numpy()
        sources["by_batch"] = int(hit.sum())
    if by_id and monitor.row_id_column in frame.columns:
        table = pd.concat(by_id, ignore_index=True).drop_duplicates("row_id", keep="last")
        ids = frame[[monitor.row_id_column]].astype(str).rename(columns={monitor.row_id_column: "row_id"})
        merged = ids.merge(table.astype({"row_id": str}), how="left", on="row_id")
        hit = merged["label"].notna().to_numpy()
        label[hit] = merged.loc[hit, "label"].astype(object).to_numpy()
        sources["by_row_id"] = int(hit.sum())
    return label, sources


def _as_profiled(frame: pd.DataFrame, profile) -> pd.DataFrame:
    """Stored nullable columns as the engine reads data sets: numeric as float64, others as objects."""
    for name, column in profile.columns.items():
        if column.kind == "numeric":
            frame[name] = frame[name].astype("float64")
        elif str(frame[name].dtype) in ("Int64", "boolean", "string"):
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame


def _reference_profile(monitor: Monitor) -> tuple[ReferenceProfile, dict[str, Any]]:
    """The monitor's reference profile: loaded from the cache its set-time build filled, or built now."""
    inputs = profile_inputs(monitor)
    options = {k: inputs[k] for k in ("kinds", "max_int_categories", "sample_rows", "seed")}
    cached = reference_profile_path(monitor.reference_dataset, monitor.columns, **options).exists()
    started = time.perf_counter()
    profile = reference_profile(monitor.reference_dataset, monitor.columns, **options)
    return profile, {"cached": cached, "seconds": round(time.perf_counter() - started, 4)}


@shared_task(
    bind=True,
    name="evalsvc.monitor_profile",
    queue=CPU,
    acks_late=True,
    soft_time_limit=3600,
    time_limit=3660,
    max_retries=3,
)
def monitor_profile(self: Any, monitor_id: str, key: str) -> str:
    """Build a monitor's reference profile when its reference or settings are set, so checks only load it."""
    monitor = Monitor.objects.select_related("reference_dataset").filter(pk=monitor_id).first()
    if monitor is None or monitor.profile_key != key or profile_key(monitor) != key:
        return "skipped"  # changed since: the build queued with the change does it
    try:
        _reference_profile(monitor)
    except EngineError as exc:
        if not exc.permanent and self.request.retries < self.max_retries:
            raise self.retry(exc=exc, countdown=10 * 2**self.request.retries) from exc
        checks.profile_outcome(monitor_id=monitor.pk, key=key, error=exc.message)
        return "failed"
    except Exception as exc:
        logger.exception("reference profile of monitor %s failed", monitor.pk)
        checks.profile_outcome(monitor_id=monitor.pk, key=key, error=f"internal error: {exc}")
        return "failed"
    checks.profile_outcome(monitor_id=monitor.pk, key=key)
    return "ready"


@shared_task(bind=True, name="evalsvc.monitor_check", queue=CPU, acks_late=True, soft_time_limit=3600, time_limit=3660)
def monitor_check(self: Any, monitor_id: str, check_id: str | None = None) -> str:
    monitor = Monitor.objects.select_related("team", "reference_dataset", "model_version").filter(pk=monitor_id).first()
    if monitor is None or (check_id is None and not monitor.enabled):
        return "skipped"
    check = checks.check_start(monitor=monitor, check_id=check_id, trigger="on_demand" if check_id else "schedule")
    end = timezone.now()
    start = end - timedelta(hours=monitor.window_hours)
    params = {**DEFAULTS, **monitor.detectors}
    rows = 0
    try:
        window = _window_frame(monitor, start, end)
        rows = int(window.shape[0])
        if rows == 0:
            raise EngineError(f"no production rows arrived in the last {monitor.window_hours} h")
        frame = window[monitor.columns].copy()
        profile, profile_info = _reference_profile(monitor)
        if monitor.profile_status != ProfileStatus.READY:
            checks.profile_outcome(monitor_id=monitor.pk, key=profile_key(monitor), adopt=True)
        report = detect_drift(profile, _as_profiled(frame, profile), config_from_params(params))
        result = report.to_dict()
        result["reference_profile"] = profile_info
        labels, sources = _labels(monitor, window)
        model = model_checks(monitor, window, labels, params)
    except EngineError as exc:
        checks.check_finish(check=check, window=(start, end), rows=rows, error=exc.message)
        return "failed"
    except Exception as exc:
        logger.exception("monitor check %s failed", check.pk)
        checks.check_finish(check=check, window=(start, end), rows=rows, error=f"internal error: {exc}")
        return "failed"
    if model.get("performance"):
        model["performance"]["label_sources"] = sources
    result.update(model)
    result["drift_sources"] = [
        name
        for name, found in (
            ("features", report.drift),
            ("prediction", bool(model.get("prediction", {}).get("drift"))),
            ("attribution", bool(model.get("attribution", {}).get("drifted"))),
        )
        if found
    ]
    result["drift"] = bool(result["drift_sources"])
    checks.check_finish(check=check, window=(start, end), rows=rows, result=result)
    return "drift" if result["drift"] else "no drift"


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
        sources = check.get("drift_sources") or ["features"]
        if "features" in sources:
            lines.append(f"Drift in: {', '.join(check.get('drifted_features') or []) or 'the multivariate detectors'}.")
        if "prediction" in sources:
            lines.append(f"The predicted classes drifted (p = {check.get('prediction_p_value')}).")
        if "attribution" in sources:
            lines.append(f"What drives the model changed: attribution nDCG {check.get('attribution_ndcg')}.")
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
