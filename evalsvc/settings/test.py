"""Test mode: the real PostgreSQL and Redis the suite is meant to run against."""

import os
import tempfile

# Each test session stores artifacts in its own directory; worker processes
# started by the end-to-end tests are handed the same path.
os.environ.setdefault("EVALSVC_VAR_DIR", tempfile.mkdtemp(prefix="evalsvc-test-"))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")

from .base import *  # noqa: F403
from .base import _database

DATABASES = {"default": _database(os.environ["DATABASE_URL"])}
DATABASES["default"]["CONN_MAX_AGE"] = 0
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Serve static files straight from the finders: no collectstatic step.
WHITENOISE_USE_FINDERS = True
