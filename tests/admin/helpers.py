"""Helpers for the officer admin tests: the role users' password and groups, audit codes,
external URLs in a page (staff, people, requests and segments come from ``tests.factories``)."""

from __future__ import annotations

import re

from compliance.audit.models import AuditEvent
from compliance.roles import AUDITOR, PRIVACY_OFFICER, SUPPORT_AGENT

PASSWORD = "pw-Long-enough-1"
ROLE_USERS = {"officer": PRIVACY_OFFICER, "support": SUPPORT_AGENT, "auditor": AUDITOR}


def codes(alias: str) -> list[int]:
    return list(AuditEvent.objects.using(alias).order_by("seq").values_list("code", flat=True))


EXTERNAL = re.compile(r"""(?:src|href|action)\s*=\s*["']\s*(?:https?:)?//""", re.I)


def external_urls(html: str) -> list[str]:
    """``src``/``href``/``action`` attributes pointing at another host (none allowed)."""
    return [html[m.start() : m.start() + 80] for m in EXTERNAL.finditer(html)]
