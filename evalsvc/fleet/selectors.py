"""Which backends and devices the live workers offer; submission checks against this."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from evalsvc.core.exceptions import ValidationFailed

from .models import WorkerStatus

HEARTBEAT_S = int(getattr(settings, "EVALSVC_HEARTBEAT_S", 30))
STALE_AFTER_S = 3 * HEARTBEAT_S


def live_workers() -> QuerySet[WorkerStatus]:
    cutoff = timezone.now() - timedelta(seconds=STALE_AFTER_S)
    return WorkerStatus.objects.filter(online=True, last_seen__gte=cutoff)


@dataclass(frozen=True)
class Offer:
    backend: str
    device: str
    queue: str
    version: str | None
    precisions: tuple[str, ...]
    formats: tuple[str, ...]


def offers() -> list[Offer]:
    """Every (backend, device, queue) some live worker can run now."""
    found: dict[tuple[str, str, str], Offer] = {}
    for worker in live_workers():
        for entry in worker.backends:
            if not entry.get("available"):
                continue
            for device in entry.get("devices", []):
                for queue in worker.queues:
                    key = (entry["name"], device, queue)
                    found.setdefault(
                        key,
                        Offer(
                            backend=entry["name"],
                            device=device,
                            queue=queue,
                            version=entry.get("version"),
                            precisions=tuple(entry.get("precisions") or ()),
                            formats=tuple(entry.get("formats") or ()),
                        ),
                    )
    return sorted(found.values(), key=lambda o: (o.backend, o.device, o.queue))


def backends_overview() -> list[dict[str, Any]]:
    """Per backend: where it is available, and why not where it is not."""
    rows: dict[str, dict[str, Any]] = {}
    for worker in live_workers():
        for entry in worker.backends:
            row = rows.setdefault(entry["name"], {"name": entry["name"], "workers": []})
            row["workers"].append(
                {
                    "hostname": worker.hostname,
                    "queues": worker.queues,
                    "available": bool(entry.get("available")),
                    "version": entry.get("version"),
                    "devices": entry.get("devices", []),
                    "precisions": entry.get("precisions", []),
                    "formats": entry.get("formats", []),
                    "reason": entry.get("reason"),
                }
            )
    return [rows[name] for name in sorted(rows)]


def require_offer(*, backend: str, device: str, precision: str | None = None, model_format: str | None = None) -> Offer:
    """The queue to send a job to, or a clear error saying what is missing.

    A job no worker can run is refused here, at submission, rather than
    waiting in a queue nobody reads.
    """
    available = offers()
    if not available:
        raise ValidationFailed("no worker is running: start one (`make run` does) and submit again")
    matching = [o for o in available if o.backend == backend and o.device == device]
    if not matching:
        have = ", ".join(sorted({f"{o.backend} on {o.device}" for o in available}))
        reasons = _reasons(backend)
        why = f" ({reasons})" if reasons else ""
        raise ValidationFailed(f"no worker offers backend {backend!r} on device {device!r}{why}; available now: {have}")
    if model_format:
        fitting = [o for o in matching if not o.formats or model_format in o.formats]
        if not fitting:
            raise ValidationFailed(f"backend {backend!r} cannot load {model_format} models")
        matching = fitting
    if precision:
        fitting = [o for o in matching if not o.precisions or precision in o.precisions]
        if not fitting:
            offered = ", ".join(sorted({p for o in matching for p in o.precisions}))
            raise ValidationFailed(f"backend {backend!r} on {device} offers precisions {offered}, not {precision!r}")
        matching = fitting
    # Prefer the queue dedicated to the device class (gpu for accelerators).
    matching.sort(key=lambda o: (o.queue != ("cpu" if device == "cpu" else "gpu"), o.queue))
    return matching[0]


def _reasons(backend: str) -> str:
    reasons = set()
    for worker in live_workers():
        for entry in worker.backends:
            if entry["name"] == backend and not entry.get("available") and entry.get("reason"):
                reasons.add(f"{worker.hostname}: {entry['reason']}")
    return "; ".join(sorted(reasons))


def require_worker_for(
    *,
    targets: Sequence[tuple[str, str, str | None]],
    model_format: str | None = None,
    queue: str | None = None,
    formats: Sequence[str | None] | None = None,
) -> str:
    """The queue of a live worker that can run every (backend, device, precision) target.

    Parity and quantization jobs compare targets inside one process, so one
    worker must offer them all. `formats`, when given, is each target's own
    model format (a parity job may compare a model's exports); else every
    target loads `model_format`.
    """
    for index, target in enumerate(targets):  # the per-target message is the clearest when one is missing everywhere
        fmt = formats[index] if formats is not None else model_format
        require_offer(backend=target[0], device=target[1], precision=target[2], model_format=fmt)
    workers = live_workers().order_by("hostname")
    for worker in workers:
        if queue is not None and queue not in worker.queues:
            continue
        table = {e["name"]: e for e in worker.backends if e.get("available")}
        if all(
            t[0] in table
            and t[1] in table[t[0]].get("devices", [])
            and (not t[2] or not table[t[0]].get("precisions") or t[2] in table[t[0]]["precisions"])
            for t in targets
        ):
            if queue is not None:
                return queue
            accelerated = any(t[1] != "cpu" for t in targets)
            queues = sorted(worker.queues, key=lambda q: q != ("gpu" if accelerated else "cpu"))
            if queues:
                return queues[0]
    if queue is not None and not any(queue in w.queues for w in workers):
        raise ValidationFailed(f"no running worker takes {queue} jobs: start one with `-Q {queue} -c 1`")
    listed = ", ".join(f"{b}/{d}/{p or 'fp32'}" for b, d, p in targets)
    raise ValidationFailed(f"no single worker offers all of {listed}; compare fewer targets per job")
