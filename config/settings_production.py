"""Production settings: every secret and database from the environment, HTTPS hardening on.

``DJANGO_SETTINGS_MODULE=config.settings_production python manage.py check --deploy`` is clean.
A missing secret is a start-up error naming the variable, never a generated fallback.
"""

import os

from django.core.exceptions import ImproperlyConfigured

for _name in ("DJANGO_SECRET_KEY", "COMPLIANCE_ROOT_KEY", "COMPLIANCE_SIGNING_KEY"):
    if not os.environ.get(_name):
        raise ImproperlyConfigured(f"{_name} must be set in the environment for production.")

os.environ.setdefault("DJANGO_DEBUG", "false")

from config.settings import *  # noqa: E402,F403

DEBUG = False
#: callbacks and webhooks: https only, never to loopback, private or link-local addresses
#: (the variable COMPLIANCE_OUTBOUND_ALLOW_LOCAL still wins, see docs/settings.md)
COMPLIANCE_OUTBOUND_ALLOW_LOCAL = False
SECURE_SSL_REDIRECT = os.environ.get("DJANGO_SECURE_SSL_REDIRECT", "true").lower() == "true"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
