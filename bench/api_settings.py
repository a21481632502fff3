"""Bench-only settings of ``python -m bench api``: the production settings
(``config.settings_production``, as ``make serve`` runs) plus the benchmark's baseline route
(``bench.api_urls``), the statement and connection counters (``bench.api_middleware``) and a
throttle rate the benchmark never reaches. Never used outside the benchmark."""

from config import settings_production as _production
from config.settings_production import *  # noqa: F403

ROOT_URLCONF = "bench.api_urls"
#: outermost, so that every statement of the request is counted
MIDDLEWARE = ["bench.api_middleware.DatabaseCountMiddleware", *_production.MIDDLEWARE]
#: the same throttle class runs (cache read and write per request) but never limits
REST_FRAMEWORK = {
    **_production.REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {"client": "100000000/min"},
}
