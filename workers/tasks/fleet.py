"""Each worker publishes the backends and devices it has, on start and then periodically.

Submission reads these rows to refuse jobs that no running worker can take.
A daemon thread refreshes the row; Celery's worker signals start and stop it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown
from django.db import close_old_connections, connection

from evalsvc.evaluations.recovery import runs_of_lost_workers_recover, runs_unsent_enqueue
from evalsvc.fleet.selectors import HEARTBEAT_S, STALE_AFTER_S, live_workers
from evalsvc.fleet.services import worker_status_offline, worker_status_publish
from evalsvc.registry.deferred import validations_of_lost_workers_recover, validations_unsent_enqueue
from workers.engine.inference.registry import probe_backends

from .common import host_environment

logger = logging.getLogger(__name__)
_stop = threading.Event()


def _queues(consumer: Any) -> list[str]:
    try:
        return sorted(q.name for q in consumer.task_consumer.queues)
    except AttributeError:
        return []


def publish(hostname: str, queues: list[str], *, starting: bool = False) -> None:
    close_old_connections()
    try:
        worker_status_publish(
            hostname=hostname, queues=queues, backends=probe_backends(), host=host_environment(), starting=starting
        )
    finally:
        connection.close()  # this runs on the heartbeat thread: don't leave its connection open


def _heartbeat(hostname: str, queues: list[str]) -> None:
    while not _stop.wait(HEARTBEAT_S):
        try:
            publish(hostname, queues)
        except Exception:  # a database blip must not kill the thread
            logger.exception("could not publish worker status")
        send_unsent()


def send_unsent() -> int:
    """Send the runs and validations the broker could not take when they were submitted (it is back if this
    worker hears it)."""
    close_old_connections()
    sent = 0
    try:
        for send in (runs_unsent_enqueue, validations_unsent_enqueue):
            try:
                sent += send()
            except Exception:
                logger.exception("could not send what waits for the job queue (%s)", send.__name__)
        return sent
    finally:
        connection.close()


@worker_ready.connect
def on_worker_ready(sender: Any = None, **kwargs: Any) -> None:
    hostname = getattr(sender, "hostname", None) or "worker"
    queues = _queues(sender)
    try:
        publish(hostname, queues, starting=True)
    except Exception:
        logger.exception("could not publish worker status at start")
    _stop.clear()
    threading.Thread(target=_heartbeat, args=(hostname, queues), name="evalsvc-heartbeat", daemon=True).start()


@worker_shutdown.connect
def on_worker_shutdown(sender: Any = None, **kwargs: Any) -> None:
    _stop.set()
    hostname = getattr(sender, "hostname", None)
    if hostname:
        try:
            worker_status_offline(hostname=hostname)
        finally:
            connection.close()


@shared_task(name="workers.fleet.recover_runs_of_lost_workers", ignore_result=True)
def recover_runs_of_lost_workers() -> int:
    """Beat runs this every HEARTBEAT_S: a run whose worker stopped reporting is requeued or failed.

    Runs the broker could not take at submission are sent too, and validations of large uploads get the same
    treatment as runs.
    """
    runs_unsent_enqueue()
    validations_unsent_enqueue()
    live = set(live_workers().values_list("hostname", flat=True))
    lost = validations_of_lost_workers_recover(live=live, stale_after_s=STALE_AFTER_S)
    return len(runs_of_lost_workers_recover()) + len(lost)
