"""The one write path of the audit log."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connections, transaction
from django.db.models import F
from django.utils import timezone

from compliance.audit.hashing import GENESIS, format_time
from compliance.audit.models import AuditChainHead, AuditEvent

#: from this many entries in one call, PostgreSQL writes them with COPY instead of INSERT
COPY_THRESHOLD = 500
_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_EMAIL_LIKE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class AuditPayloadError(ValueError):
    """A payload that could carry personal data or would not hash stably."""


@dataclass(frozen=True)
class Actor:
    """Who caused an event: ``user`` (staff pk), ``client`` (API client pk) or ``system``."""

    kind: str
    id: str = ""

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls(kind="system", id=name)

    @classmethod
    def user(cls, user) -> Actor:
        return cls(kind="user", id=str(user.pk))

    @classmethod
    def client(cls, client) -> Actor:
        return cls(kind="client", id=str(client.pk))


@dataclass(frozen=True)
class AuditEntry:
    code: int
    actor: Actor
    subject_token: str = ""
    object_type: str = ""
    object_id: str = ""
    payload: Mapping = field(default_factory=dict)


def chain_id_for(*, using: str) -> str:
    """The chain id of a database: its alias."""
    return using


def _check_payload(value, path: str = "payload") -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise AuditPayloadError(f"{path}: keys must be strings")
            _check_payload(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_payload(item, f"{path}[{index}]")
    elif isinstance(value, bool | int) or value is None:
        return
    elif isinstance(value, str):
        if _EMAIL_LIKE.search(value):
            raise AuditPayloadError(f"{path} looks like an e-mail address: no personal data")
    else:
        raise AuditPayloadError(f"{path}: only str, int, bool, null, lists and objects")


def audit_append(
    *, using: str, entries: Sequence[AuditEntry], at: datetime | None = None
) -> list[AuditEvent]:
    """Append ``entries`` to the chain of database ``using``, in the caller's transaction.

    Locks the chain head row first, so concurrent writers queue instead of forking the chain;
    sequence numbers are gapless because the head moves in the same transaction as the rows.
    Opens a transaction on ``using`` if the caller has none. Returns the saved events; on
    PostgreSQL, calls with ``COPY_THRESHOLD`` or more entries are written with COPY and the
    returned events have no ``pk`` (``seq`` identifies them).
    """
    if not entries:
        return []
    for entry in entries:
        _check_payload(dict(entry.payload))
    chain_id = chain_id_for(using=using)
    with transaction.atomic(using=using):
        head = _lock_head(using=using, chain_id=chain_id)
        # The time is taken under the lock, so that times never go backwards along the chain.
        now = at or timezone.now()
        occurred = format_time(now)
        seq, prev = head.size, bytes.fromhex(head.head_hash)
        rows = []
        append_row = rows.append
        encode, sha256 = _encode, hashlib.sha256
        for entry in entries:
            seq += 1
            payload = dict(entry.payload)
            code = int(entry.code)
            actor = entry.actor
            digest = sha256(
                prev
                + encode(
                    [
                        chain_id,
                        seq,
                        occurred,
                        code,
                        actor.kind,
                        actor.id,
                        entry.subject_token,
                        entry.object_type,
                        entry.object_id,
                        payload,
                    ]
                ).encode()
            ).digest()
            prev = digest
            append_row(
                AuditEvent(
                    seq=seq,
                    occurred_at=now,
                    code=code,
                    actor_type=actor.kind,
                    actor_id=actor.id,
                    subject_token=entry.subject_token,
                    object_type=entry.object_type,
                    object_id=entry.object_id,
                    payload=payload,
                    hash=digest.hex(),
                )
            )
        connection = connections[using]
        if connection.vendor == "postgresql" and len(rows) >= COPY_THRESHOLD:
            _copy_rows(using=using, rows=rows)
        else:
            AuditEvent.objects.using(using).bulk_create(rows, batch_size=2000)
        AuditChainHead.objects.using(using).filter(chain_id=chain_id).update(
            size=seq, head_hash=prev.hex()
        )
    return rows


_COPY_SQL = (
    "COPY audit_auditevent (seq, occurred_at, code, actor_type, actor_id, subject_token, "
    "object_type, object_id, payload, hash) FROM STDIN"
)


def _copy_rows(*, using: str, rows: list[AuditEvent]) -> None:
    """Write ``rows`` with PostgreSQL COPY (psycopg 3); their ``pk`` stays ``None``."""
    dumps = json.dumps
    with connections[using].cursor() as cursor:
        with cursor.cursor.copy(_COPY_SQL) as copy:
            write_row = copy.write_row
            for row in rows:
                write_row(
                    (
                        row.seq,
                        row.occurred_at,
                        row.code,
                        row.actor_type,
                        row.actor_id,
                        row.subject_token,
                        row.object_type,
                        row.object_id,
                        dumps(row.payload),
                        row.hash,
                    )
                )


def _lock_head(*, using: str, chain_id: str) -> AuditChainHead:
    heads = AuditChainHead.objects.using(using)
    # Take the row lock with an UPDATE first: it works the same on PostgreSQL and SQLite.
    if not heads.filter(chain_id=chain_id).update(size=F("size")):
        heads.get_or_create(chain_id=chain_id, defaults={"size": 0, "head_hash": GENESIS})
    if connections[using].vendor == "postgresql":
        return heads.select_for_update().get(chain_id=chain_id)
    return heads.get(chain_id=chain_id)
