"""Helpers for the officer admin tests: staff users per role, people, requests, segments."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from compliance.audit.models import AuditEvent
from compliance.audit.services.append import Actor
from compliance.consent.services.record import consent_record
from compliance.dsar.models import PrivacyRequest
from compliance.dsar.services.requests import request_open
from compliance.roles import AUDITOR, PRIVACY_OFFICER, SUPPORT_AGENT
from compliance.services.subjects import subject_resolve
from segments.services.definitions import segment_activate, segment_approve, segment_create

ACTOR = Actor.system("test")
PASSWORD = "pw-Long-enough-1"
ROLE_USERS = {"officer": PRIVACY_OFFICER, "support": SUPPORT_AGENT, "auditor": AUDITOR}
_n = itertools.count(1)


def staff(username: str, group: str | None):
    user = get_user_model().objects.create_user(username=username, password=PASSWORD, is_staff=True)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return get_user_model().objects.get(pk=user.pk)  # fresh permission cache


def person(email: str, jurisdiction: str = "FR"):
    return subject_resolve(
        identifier_type="email", value=email, jurisdiction=jurisdiction, actor=ACTOR
    )


def erasure_request(
    email: str, *, overdue: bool = False, jurisdiction: str = "FR", regulation: str = "gdpr"
):
    """An erasure awaiting approval (optionally made overdue) for a person with data."""
    person(email, jurisdiction)
    opened = request_open(
        type="erasure",
        regulation=regulation,
        identifiers=[{"type": "email", "value": email}],
        verification_method="email_confirmation",
        actor=ACTOR,
        jurisdiction=jurisdiction,
    ).request
    if overdue:
        PrivacyRequest.objects.using(opened.region).filter(pk=opened.pk).update(
            due_at=timezone.now() - timedelta(days=2)
        )
    return PrivacyRequest.objects.using(opened.region).get(pk=opened.pk)


def grant(subject, purpose: str, source: str = "web", decision: str = "granted"):
    return consent_record(
        subject=subject,
        purpose=purpose,
        decision=decision,
        source=source,
        actor=ACTOR,
        jurisdiction="FR",
    )


def segment(*, user, status: str = "draft", key: str | None = None, layers=("behavioral",), **kw):
    values = {
        "owner": user,
        "motion": "campaign",
        "measurement_metric": "conversion rate",
        "control_group_share": "0.1",
        **kw,
    }
    seg = segment_create(
        key=key or f"seg-{next(_n)}", name="Test segment", layers=list(layers), user=user, **values
    )
    if status in ("approved", "active"):
        seg = segment_approve(segment=seg, user=user)
    if status == "active":
        seg = segment_activate(segment=seg, user=user)
    return seg


def codes(alias: str) -> list[int]:
    return list(AuditEvent.objects.using(alias).order_by("seq").values_list("code", flat=True))


EXTERNAL = re.compile(r"""(?:src|href|action)\s*=\s*["']\s*(?:https?:)?//""", re.I)


def external_urls(html: str) -> list[str]:
    """``src``/``href``/``action`` attributes pointing at another host (none allowed)."""
    return [html[m.start() : m.start() + 80] for m in EXTERNAL.finditer(html)]
