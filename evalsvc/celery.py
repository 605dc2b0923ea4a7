"""The Celery application: configured from Django settings (CELERY_* names)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsvc.settings.local")

app = Celery("evalsvc")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Tasks that belong to no job kind.
app.conf.imports = ("workers.tasks.fleet", "workers.tasks.monitoring", "workers.tasks.registry")


def job_task_modules() -> list[str]:
    """Each registered job kind's task module (settings.EVALSVC_JOB_KINDS); read once Django is set up."""
    from evalsvc.evaluations.kinds import all_kinds

    return [kind.task_module for kind in all_kinds()]


# Imported when the worker imports its task modules, after the Django fix-up has set Django up.
app.autodiscover_tasks(job_task_modules, related_name=None)
