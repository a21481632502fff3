"""Settings for the toolkit, read from the environment, with an embedded default.

With no environment at all the toolkit runs on SQLite files under ``var/`` (one per database
alias) and the project's embedded file broker (``compliance/broker.py``), with secrets generated once into ``var/secrets.json``.
Every variable is listed in the README's configuration table.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

from compliance.conf import environment_value
from config.local_secrets import local_secrets

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("COMPLIANCE_VAR_DIR", BASE_DIR / "var")).resolve()


def _env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


_SECRETS = local_secrets(var_dir=VAR_DIR)
SECRET_KEY = _SECRETS["DJANGO_SECRET_KEY"]
COMPLIANCE_ROOT_KEY = _SECRETS["COMPLIANCE_ROOT_KEY"]
COMPLIANCE_SIGNING_KEY = _SECRETS["COMPLIANCE_SIGNING_KEY"]

DEBUG = _env_bool("DJANGO_DEBUG", True)
ALLOWED_HOSTS = _env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "compliance",
    "compliance.audit",
    "compliance.consent",
    "compliance.events",
    "compliance.plans",
    "compliance.dsar",
    "compliance.officer",
    "compliance.retention",
    "compliance.feed",
    "segments",
]

MIDDLEWARE = [
    # first: request id, latency histogram and the one JSON log line of every request
    "compliance.ops.middleware.RequestObservationMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
            ],
        },
    },
]

# --- Databases: "default" is the control database; one alias per region -------------------
COMPLIANCE_REGIONS = environment_value("REGIONS")


#: persistent connections (one per alias per thread), health-checked before reuse
_CONN_MAX_AGE = environment_value("DB_CONN_MAX_AGE")
#: PostgreSQL: the hot paths' statements prepared once per connection (compliance.db.batch)
_PREPARED = environment_value("DB_PREPARED_STATEMENTS")


def _database(alias: str) -> dict:
    env_name = "DATABASE_URL" if alias == "default" else f"DATABASE_URL_{alias.upper()}"
    url = os.environ.get(env_name)
    if url:
        config = dj_database_url.parse(
            url, conn_max_age=_CONN_MAX_AGE, conn_health_checks=_CONN_MAX_AGE > 0
        )
        config.setdefault("TEST", {})
        if config["ENGINE"] == "django.db.backends.sqlite3":
            config["TEST"]["NAME"] = f"{config['NAME']}.test"
        elif _PREPARED and config["ENGINE"].endswith("postgresql"):
            # psycopg's default threshold; Django turns preparing off unless it is set
            config.setdefault("OPTIONS", {})["prepare_threshold"] = 5
        return config
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(VAR_DIR / f"{alias}.sqlite3"),
        "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
        "CONN_MAX_AGE": _CONN_MAX_AGE,
        "CONN_HEALTH_CHECKS": _CONN_MAX_AGE > 0,
        # A file, not memory, so that worker processes started by tests see the test data.
        "TEST": {"NAME": str(VAR_DIR / f"test_{alias}.sqlite3")},
    }


DATABASES = {alias: _database(alias) for alias in ["default", *COMPLIANCE_REGIONS]}
DATABASE_ROUTERS = ["compliance.router.ResidencyRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Toolkit settings -----------------------------------------------------------------------
# Every COMPLIANCE_* setting is declared once in compliance/conf.py (docs/settings.md) and read
# from the environment there: environment, then a COMPLIANCE_* Django setting here, then the
# default. Only the regions (for DATABASES above), the keys (generated locally) and development
# defaults are set here.
#: callbacks and webhooks to http:// and local addresses (development only; off in production)
COMPLIANCE_OUTBOUND_ALLOW_LOCAL = DEBUG

# --- Celery ---------------------------------------------------------------------------------
# The embedded default: ``embedded://``, the project's crash-safe file broker
# (compliance/broker.py) under var/broker/. Production: redis:// or amqp://.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "embedded://")
if CELERY_BROKER_URL.startswith("embedded://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder": str(VAR_DIR / "broker"),
        # the worker looks for new tasks this often (change feed: delivered within 2 seconds)
        "polling_interval": 0.1,
    }
elif CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's own file transport, only on request: it can hand out a half-written message
    _broker_dir = VAR_DIR / "broker-filesystem"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        "polling_interval": 0.1,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Redis only: an unacknowledged task (worker killed) is redelivered after this long.
        "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600")),
        # scan for unacknowledged tasks of dead workers every ~10 s (not every ~100 s)
        "unacked_restore_throttle": 1,
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_CREATE_MISSING_QUEUES = False
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ROUTES = ("compliance.tasking.route_task",)
CELERY_TASK_DEFAULT_QUEUE = "compliance.control"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Beat entries come from each app's ``schedule.py`` (``BEAT_SCHEDULE``), see config/celery.py.

# --- Auth, API --------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["compliance.api.auth.ApiTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["compliance.api.permissions.HasRequiredScope"],
    "DEFAULT_THROTTLE_CLASSES": ["compliance.api.throttling.ClientRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"client": os.environ.get("API_THROTTLE_RATE", "6000/min")},
    "DEFAULT_SCHEMA_CLASS": "compliance.api.schema.ApiAutoSchema",
    "EXCEPTION_HANDLER": "compliance.api.errors.error_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["compliance.api.inputs.SafeJSONParser"],
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Privacy and consent compliance toolkit API",
    "DESCRIPTION": "Consent, events, segments and data subject requests. Bearer token with scopes.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # 3.1: webhooks, and scope names in bearer security requirements
    "OAS_VERSION": "3.1.0",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "compliance.api.schema.errors_postprocess",
        "compliance.api.schema.callbacks_postprocess",
        "compliance.api.schema.links_postprocess",
    ],
    # Swagger UI and Redoc from the drf-spectacular-sidecar package: no CDN
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "IdentifierTypeEnum": "compliance.models.subjects.IdentifierType",
        "RequestTypeEnum": "compliance.dsar.models.RequestType",
        "SignalTypeEnum": ["tcf"],
    },
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
LOGIN_URL = "/admin/login/"

# One JSON object per line (``LOG_FORMAT=text`` for plain lines), each with the request id of
# the request or Celery task it belongs to (compliance/ops/logs.py).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "compliance.ops.logs.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "compliance.ops.logs.JsonFormatter"},
        "text": {"format": "%(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": "text" if os.environ.get("LOG_FORMAT") == "text" else "json",
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
