from __future__ import annotations

from django.db import models


class WorkerStatus(models.Model):
    """What one Celery worker can run, as it last reported it.

    Workers publish on start and then every ``HEARTBEAT_S`` seconds; a row not
    refreshed within ``STALE_AFTER_S`` is a worker that is gone.
    """

    hostname = models.CharField(max_length=200, unique=True)
    queues = models.JSONField(default=list)
    #: One entry per registered backend: name, available, version, devices,
    #: precisions, formats, and the reason when unavailable.
    backends = models.JSONField(default=list)
    host = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)
    online = models.BooleanField(default=True)

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return self.hostname
