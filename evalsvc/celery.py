"""The Celery application: configured from Django settings (CELERY_* names)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsvc.settings.local")

app = Celery("evalsvc")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Tasks live outside the Django apps (workers/tasks), so they are listed here.
app.conf.imports = (
    "workers.tasks.evaluate",
    "workers.tasks.parity",
    "workers.tasks.quantize",
    "workers.tasks.profile",
    "workers.tasks.fleet",
)
