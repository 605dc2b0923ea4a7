"""Settings shared by every mode; each value can be set from the environment.

Defaults are the embedded ones (SQLite, a filesystem broker under ``var/``)
so that a fresh checkout runs with nothing to install. ``DATABASE_URL``,
``CELERY_BROKER_URL`` and ``AWS_STORAGE_BUCKET_NAME`` switch to PostgreSQL,
Redis/RabbitMQ and S3-compatible storage.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF

from evalsvc.core.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("EVALSVC_VAR_DIR", str(BASE_DIR / "var"))).resolve()

SECRET_KEY = env_str("DJANGO_SECRET_KEY", "insecure-local-development-key-change-me")
DEBUG = env_bool("DJANGO_DEBUG", False)
# Alerts (a damaged audit trail) are mailed to these addresses ("name@host", comma-separated).
ADMINS = [(address, address) for address in env_list("DJANGO_ADMINS", [])]
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "evalsvc.core",
    "evalsvc.teams",
    "evalsvc.registry",
    "evalsvc.evaluations",
    "evalsvc.monitoring",
    "evalsvc.fleet",
    "evalsvc.dashboards",
    "evalsvc.audit",
    "evalsvc.reports",
    "evalsvc.demo",
]

MIDDLEWARE = [
    # First: behind a trusted reverse proxy, REMOTE_ADDR becomes the client's address for everything after.
    "evalsvc.core.middleware.ForwardedClientAddressMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Before any view or check reads a form: the upload limit holds while the body arrives.
    "evalsvc.registry.uploads.UploadLimitMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "evalsvc.core.middleware.PrivateResponsesMiddleware",
    # Last: turns a refused sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

#: The inline styles plotly.js writes, by content: an empty <style> it then fills
#: through CSSOM (allowed), MapLibre's stylesheet it inserts at load, and two
#: fixed style attributes ('unsafe-hashes' admits attributes matching a hash,
#: nothing else). Computed for static/vendor/plotly.min.js; the browser test
#: fails with the new hashes in its message when plotly.js changes.
PLOTLY_STYLE_HASHES = [
    "'unsafe-hashes'",
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
    "'sha256-ji27qzEtxXZW+7dun6UwjHXJ18e6WAin1VvNtkzIE/o='",
    "'sha256-AR/cKIZjWPcPmBUPDA6oti9XBiTbJvz0Cro2J1VzzS8='",
    # The fixed styles of plotly's pseudo-HTML in figure text (<sup>/<sub> — a log axis's
    # exponents, 10⁻³ —, <s>, <u>, <b>, <i>, <a>, <em>), one hash each.
    "'sha256-S+l+cz1wXqs2B0FcjqqT7NvjwGmhD1UjJswXjlSkj0s='",  # font-size:70%
    "'sha256-VsW+KK2us4Zm/MYs7gOBGT2j1PVsOrKN+ZdxKiwQLs0='",  # text-decoration:line-through
    "'sha256-EntWS0hFrz2vH7susM+dPUxvHlL6sBswmM8K80E5oUk='",  # text-decoration:underline
    "'sha256-wkY2X5hecQzbhnFCqvTpwrUJ1f4X8LH5WFjYUzv1wmU='",  # font-weight:bold
    "'sha256-r8zR3S6YuWY5tpo2Y0PvZHW5fa+SKLNon9zbEWb5UPA='",  # font-style:italic
    "'sha256-lGP/R5jOMXytzwBHVEM5Nv4XbT9fuH6V2dET/0dje2s='",  # cursor:pointer
    "'sha256-QgxrH8SPeZw8KPU9SIHednmi+cE2XsWUSrOq52U6k4s='",  # font-style:italic;font-weight:bold
]
# Content-Security-Policy on every response (django-csp). Pages load scripts and
# styles from this origin only and run no inline script: figures are JSON in
# <script type="application/json"> blocks drawn by static/js/run.js. plotly.js
# draws heatmaps as data: images and exports PNGs through blob: images.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, *PLOTLY_STYLE_HASHES],
        "img-src": [SELF, "data:", "blob:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

ROOT_URLCONF = "evalsvc.urls"
WSGI_APPLICATION = "evalsvc.wsgi.application"
ASGI_APPLICATION = "evalsvc.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "evalsvc.teams.context_processors.roles",
            ],
        },
    },
]


def _database(url: str) -> dj_database_url.DBConfig:
    config = dj_database_url.parse(url, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # The web server, the worker and beat share one SQLite file: WAL lets
        # readers proceed while a writer commits, IMMEDIATE avoids lock upgrades.
        config["CONN_MAX_AGE"] = 0
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    return config


DATABASES = {"default": _database(env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Sign-in throttling (django-axes): after AXES_FAILURE_LIMIT wrong passwords for
# one account, or from one address, further attempts for it are refused until
# the cool-off has passed, on the login page, the admin and the token endpoint alike.
AUTHENTICATION_BACKENDS = [
    "evalsvc.teams.signin.SignInThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("EVALSVC_SIGNIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("EVALSVC_SIGNIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one locks: by account and by address
# A refused attempt during the cool-off neither counts nor extends it.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "evalsvc.teams.signin.lockout_response"
# The client address is REMOTE_ADDR, which evalsvc.core.middleware sets from X-Forwarded-For behind
# EVALSVC_TRUSTED_PROXY_COUNT trusted proxies (a client can forge the entries left of theirs).
AXES_VERBOSE = False

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Files -------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise looks here even before collectstatic

#: Root under which every uploaded artifact is stored, content-addressed by SHA-256.
STORAGE_ROOT = Path(env_str("EVALSVC_STORAGE_ROOT", str(VAR_DIR / "storage"))).resolve()
#: Local copies of remote (S3) artifacts that workers need as files.
ARTIFACT_CACHE_DIR = Path(env_str("EVALSVC_ARTIFACT_CACHE", str(VAR_DIR / "cache"))).resolve()

AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME", "")
if AWS_STORAGE_BUCKET_NAME:
    _artifact_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL", "") or None,
            "region_name": env_str("AWS_S3_REGION_NAME", "") or None,
            "location": env_str("AWS_LOCATION", "evalsvc"),
            "file_overwrite": False,
            "default_acl": None,
        },
    }
else:
    _artifact_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(STORAGE_ROOT), "base_url": None},
    }
STORAGES = {
    "default": _artifact_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Uploads always go to a temporary file: models and data sets are hashed and
# validated from disk, never held whole in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 0
FILE_UPLOAD_TEMP_DIR = str(VAR_DIR / "tmp")
Path(FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)
#: All files of one upload request together; refused (413) while the body arrives, past this.
EVALSVC_MAX_UPLOAD_BYTES = env_int("EVALSVC_MAX_UPLOAD_MB", 2048) * 1024 * 1024
#: Files up to this size are validated inside the request; larger ones by a worker (the
#: version is "validating" until then), so no request holds a web process for long.
EVALSVC_INLINE_VALIDATION_BYTES = env_int("EVALSVC_INLINE_VALIDATION_MB", 8) * 1024 * 1024

# --- Cache (API throttling counters) -----------------------------------------
# Shared by every web process when EVALSVC_CACHE_URL names a Redis database;
# otherwise each process counts on its own.
_cache_url = env_str("EVALSVC_CACHE_URL", "")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}
        if _cache_url
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Job kinds ---------------------------------------------------------------
# The one list of job kinds: each entry is a module with a ``KIND`` (or
# "module:ATTRIBUTE"). The Celery app's task imports, the submission form, the
# run page and reports derive from it (evalsvc.evaluations.kinds).
# --- Monitoring ------------------------------------------------------------------
# A production batch (one request) is refused above these.
EVALSVC_MONITOR_BATCH_MAX_MB = env_int("EVALSVC_MONITOR_BATCH_MAX_MB", 64)
EVALSVC_MONITOR_BATCH_MAX_ROWS = env_int("EVALSVC_MONITOR_BATCH_MAX_ROWS", 1_000_000)
# An evaluation over more rows than this is split by row ranges into chunks run across workers.
EVALSVC_CHUNK_ROWS = max(1, env_int("EVALSVC_CHUNK_ROWS", 10_000_000))
# Above this many rows an evaluation's F1, macro averages, ROC AUC and regression metrics get analytic
# intervals (DeLong, delta method, normal theory) instead of bootstrap ones, which would cost more than the
# evaluation itself.
# Seconds between a worker's status reports (and its sending of runs the broker could not take); a worker
# silent for three of them is taken for lost.
EVALSVC_HEARTBEAT_S = max(1, env_int("EVALSVC_HEARTBEAT_S", 30))
EVALSVC_ANALYTIC_INTERVAL_ROWS = max(0, env_int("EVALSVC_ANALYTIC_INTERVAL_ROWS", 100_000))
# A tabular explanation of more rows than this is split into chunks of at most this many explained rows
# (rounded up to whole blocks of 16), run across workers.
EVALSVC_EXPLAIN_CHUNK_ROWS = max(1, env_int("EVALSVC_EXPLAIN_CHUNK_ROWS", 512))
# host:port names under which this service is reachable; webhooks may not point at them
# (the address a monitor is created through is always refused).
EVALSVC_SELF_HOSTS = env_list("EVALSVC_SELF_HOSTS", [])

EVALSVC_JOB_KINDS = [
    "evalsvc.evaluations.kinds.evaluate",
    "evalsvc.evaluations.kinds.parity",
    "evalsvc.evaluations.kinds.quantize",
    "evalsvc.evaluations.kinds.profile",
    "evalsvc.evaluations.kinds.drift",
    "evalsvc.evaluations.kinds.explain",
]

# --- API ---------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "evalsvc.core.schema.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("EVALSVC_API_ANON_RATE", "60/min"),
        "user": env_str("EVALSVC_API_USER_RATE", "2000/min"),
        # The token endpoint, per address: password guessing meets this before anything else.
        "sign_in": env_str("EVALSVC_API_SIGN_IN_RATE", "10/min"),
    },
    "EXCEPTION_HANDLER": "evalsvc.core.exceptions.api_exception_handler",
    # Throttles count by the connection's address, not a client-written X-Forwarded-For.
    "NUM_PROXIES": env_int("EVALSVC_TRUSTED_PROXY_COUNT", 0),
}
# Reverse proxies in front of the web server whose X-Forwarded-For entries are trusted (docker-compose: 1, nginx).
EVALSVC_TRUSTED_PROXY_COUNT = max(0, env_int("EVALSVC_TRUSTED_PROXY_COUNT", 0))
EVALSVC_PUBLIC_API_DOCS = env_bool("EVALSVC_PUBLIC_API_DOCS", False)
SPECTACULAR_SETTINGS = {
    "TITLE": "evalsvc API",
    "DESCRIPTION": "Register models and data sets, run evaluation jobs, read their results.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Signed-in users only, unless EVALSVC_PUBLIC_API_DOCS opens the schema and its pages.
    "SERVE_PERMISSIONS": ["evalsvc.core.apidocs.SchemaAccess"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Memberships, invitations and their inputs share one role enum.
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "evalsvc.teams.models.Role",
        "ArtifactStatusEnum": "evalsvc.registry.models.ArtifactStatus",
        "RunStatusEnum": "evalsvc.evaluations.models.RunStatus",
        "ReportStatusEnum": "evalsvc.reports.models.ReportStatus",
        "CheckStatusEnum": "evalsvc.monitoring.models.CheckStatus",
        "AlertStatusEnum": "evalsvc.monitoring.models.AlertStatus",
    },
    # Swagger UI and ReDoc assets come from the sidecar package: no CDN (air-gapped users).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Celery ------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
_broker_dir = VAR_DIR / "broker"
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Broadcasts (revoke, ping) are files too; kept under var/ rather than the working directory.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {}
)
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Runs whose worker stopped reporting (killed, host lost) are requeued or failed
# within STALE_AFTER_S (90 s) plus this interval, not after the broker's hour.
CELERY_BEAT_SCHEDULE = {
    "recover-runs-of-lost-workers": {"task": "workers.fleet.recover_runs_of_lost_workers", "schedule": 30.0},
}
CELERY_TIMEZONE = TIME_ZONE

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("EVALSVC_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "evalsvc.core.staticfinders.PlotlyFinder",
]
