"""Small factories for the segments tests: staff users, subjects, consent, segments."""

from __future__ import annotations

import itertools
from collections import Counter

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connections

from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditEvent
from compliance.audit.services.append import Actor
from compliance.consent.services.record import consent_record
from compliance.roles import PRIVACY_OFFICER
from compliance.services.subjects import subject_resolve
from segments.models import LAYER_PURPOSES
from segments.services.definitions import segment_activate, segment_approve, segment_create

ACTOR = Actor.system("test")
_counter = itertools.count(1)


def staff(username: str, group: str = PRIVACY_OFFICER):
    user = get_user_model().objects.create_user(username=username, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return get_user_model().objects.get(pk=user.pk)  # fresh permission cache


def subject(jurisdiction: str = "FR"):
    n = next(_counter)
    return subject_resolve(
        identifier_type="email",
        value=f"person{n}@example.com",
        jurisdiction=jurisdiction,
        actor=ACTOR,
    )


def grant(person, purposes=("audience_segmentation", "measurement"), jurisdiction="FR"):
    return [
        consent_record(
            subject=person,
            purpose=purpose,
            decision="granted",
            source="web",
            actor=ACTOR,
            jurisdiction=jurisdiction,
        )
        for purpose in purposes
    ]


def consented(n: int = 1, jurisdiction: str = "FR", purposes=None):
    """``n`` subjects with consent to the behavioral layer's purposes."""
    people = [subject(jurisdiction) for _ in range(n)]
    for person in people:
        grant(person, purposes or LAYER_PURPOSES["behavioral"], jurisdiction)
    return people


def segment(*, officer, key: str | None = None, layers=("behavioral",), status="active", **kw):
    """A complete segment, moved to ``status`` (draft, approved or active)."""
    values = {
        "owner": officer,
        "motion": "campaign",
        "measurement_metric": "conversion rate",
        "control_group_share": "0.1",
    }
    values.update(kw)
    seg = segment_create(
        key=key or f"seg-{next(_counter)}",
        name="Test segment",
        layers=layers,
        user=officer,
        **values,
    )
    if status in ("approved", "active"):
        seg = segment_approve(segment=seg, user=officer)
    if status == "active":
        seg = segment_activate(segment=seg, user=officer)
    return seg


def codes(alias: str, *wanted: AuditCode) -> Counter:
    rows = AuditEvent.objects.using(alias).filter(code__in=[int(c) for c in wanted])
    return Counter(rows.values_list("code", flat=True))


def events(alias: str, code: AuditCode):
    return list(AuditEvent.objects.using(alias).filter(code=int(code)).order_by("seq"))


def raw_count(alias: str, sql: str, params=()) -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]
