"""Local mode: `make run` on a laptop, SQLite and a filesystem broker by default.

DEBUG stays off unless DJANGO_DEBUG=true: a debug 404 page lists every URL
pattern and a debug 500 page the settings, to anyone who can reach the port.
"""

from evalsvc.core.env import env_bool

from .base import *  # noqa: F403

DEBUG = env_bool("DJANGO_DEBUG", False)

# WhiteNoise serves static files straight from the finders, with DEBUG on or off: no collectstatic step.
WHITENOISE_USE_FINDERS = True
