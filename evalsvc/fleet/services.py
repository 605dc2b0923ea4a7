from __future__ import annotations

from typing import Any

from django.utils import timezone

from .models import WorkerStatus


def worker_status_publish(
    *, hostname: str, queues: list[str], backends: list[dict[str, Any]], host: dict[str, Any], starting: bool = False
) -> WorkerStatus:
    now = timezone.now()
    defaults: dict[str, Any] = {"queues": queues, "backends": backends, "host": host, "last_seen": now, "online": True}
    if starting:
        defaults["started_at"] = now
    status, created = WorkerStatus.objects.update_or_create(
        hostname=hostname, defaults=defaults, create_defaults={**defaults, "started_at": now}
    )
    return status


def worker_status_offline(*, hostname: str) -> None:
    WorkerStatus.objects.filter(hostname=hostname).update(online=False, last_seen=timezone.now())
