"""Helpers for the audit tests: appending, and tampering with raw SQL behind the service."""

from __future__ import annotations

import contextlib

from django.db import connections

from compliance.audit.codes import AuditCode
from compliance.audit.hashing import GENESIS, canonical, chain_hash
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


def rehashed(rows: list, *, chain_id: str, start: int, change) -> list[tuple]:
    """``(row, payload, hash)`` for ``rows[start-1:]`` (rows of ``iter_rows``, from #1) with
    ``change(payload)`` applied at ``start`` and every later hash recomputed with the
    toolkit's own canonical form: what someone with the tables but not the signing key can do."""
    prev = GENESIS if start == 1 else rows[start - 2][9]
    out = []
    for row in rows[start - 1 :]:
        payload = dict(row[8])
        if row[0] == start:
            change(payload)
        prev = chain_hash(
            prev_hash=prev,
            canonical_bytes=canonical(
                chain_id=chain_id,
                seq=row[0],
                occurred_at=row[1],
                code=row[2],
                actor_type=row[3],
                actor_id=row[4],
                subject_token=row[5],
                object_type=row[6],
                object_id=row[7],
                payload=payload,
            ),
        )
        out.append((row, payload, prev))
    return out
