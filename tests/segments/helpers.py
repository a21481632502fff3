"""Helpers for the segments tests: audit codes and events of a region, raw counts (people,
consent and segments come from ``tests.factories``)."""

from __future__ import annotations

from collections import Counter

from django.db import connections

from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditEvent
from tests.factories import ACTOR

__all__ = ["ACTOR", "codes", "events", "raw_count"]


def codes(alias: str, *wanted: AuditCode) -> Counter:
    rows = AuditEvent.objects.using(alias).filter(code__in=[int(c) for c in wanted])
    return Counter(rows.values_list("code", flat=True))


def events(alias: str, code: AuditCode):
    return list(AuditEvent.objects.using(alias).filter(code=int(code)).order_by("seq"))


def raw_count(alias: str, sql: str, params=()) -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]
