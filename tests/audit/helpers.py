"""Helpers for the audit tests: appending, and tampering with raw SQL behind the service."""

from __future__ import annotations

import contextlib

from django.db import connections

from compliance.audit.codes import AuditCode
from compliance.audit.protection import PROTECTED_TABLES
from compliance.audit.services.append import Actor, AuditEntry, audit_append

ACTOR = Actor.system("test")


def append(alias: str, count: int, *, code: int = AuditCode.CONSENT_RECORDED, **payload) -> None:
    for index in range(count):
        audit_append(
            using=alias,
            entries=[
                AuditEntry(
                    code=code,
                    actor=ACTOR,
                    subject_token=f"tok{index}",
                    object_type="thing",
                    object_id=str(index),
                    payload={"n": index, **payload},
                )
            ],
        )


@contextlib.contextmanager
def tamper(alias: str):
    """A raw cursor on ``alias`` with the append-only triggers disabled (PostgreSQL)."""
    connection = connections[alias]
    with connection.cursor() as cursor:
        postgres = connection.vendor == "postgresql"
        if postgres:
            for table in PROTECTED_TABLES:
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        try:
            yield cursor
        finally:
            if postgres:
                for table in PROTECTED_TABLES:
                    cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def renumber(cursor, *, above: int, delta: int) -> None:
    """``seq += delta`` for entries with ``seq > above`` (two steps: seq is unique)."""
    cursor.execute("UPDATE audit_auditevent SET seq = -seq WHERE seq > %s", [above])
    cursor.execute("UPDATE audit_auditevent SET seq = -seq + %s WHERE seq < 0", [delta])
