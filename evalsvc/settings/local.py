"""Local mode: `make run` on a laptop, SQLite and a filesystem broker by default."""

from evalsvc.core.env import env_bool

from .base import *  # noqa: F403

DEBUG = env_bool("DJANGO_DEBUG", True)

# Serve static files straight from the finders: no collectstatic step.
WHITENOISE_USE_FINDERS = True
