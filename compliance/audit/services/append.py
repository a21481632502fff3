"""The one write path of the audit log."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import NamedTuple

from django.db import connections, transaction
from django.db.models import F
from django.utils import timezone

from compliance.audit.hashing import GENESIS, canonical_json, entry_hash, format_time
from compliance.audit.models import AuditChainHead, AuditEvent
from compliance.db_guards import is_postgresql
from compliance.errors import ApplicationError

#: from this many entries in one call, PostgreSQL writes them with COPY instead of INSERT
COPY_THRESHOLD = 500
_EMAIL_LIKE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class AuditPayloadError(ApplicationError, ValueError):
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
        if "@" in value and _EMAIL_LIKE.search(value):
            raise AuditPayloadError(f"{path} looks like an e-mail address: no personal data")
    else:
        raise AuditPayloadError(f"{path}: only str, int, bool, null, lists and objects")


def _check_flat(payload: dict) -> None:
    """``_check_payload`` for the common flat payload of str/int/bool/None values, without a
    call per value; anything else (nested, subclasses, bad types) takes the full check."""
    for key, item in payload.items():
        kind = type(item)
        if type(key) is not str:
            raise AuditPayloadError("payload: keys must be strings")
        if kind is str:
            if "@" in item and _EMAIL_LIKE.search(item):
                raise AuditPayloadError(
                    f"payload.{key} looks like an e-mail address: no personal data"
                )
        elif kind is not int and kind is not bool and item is not None:
            _check_payload(item, f"payload.{key}")


class _Row(NamedTuple):
    seq: int
    code: int
    actor_type: str
    actor_id: str
    subject_token: str
    object_type: str
    object_id: str
    payload_json: str
    hash: str


class AppendedEvents(Sequence):
    """The events an ``audit_append`` call wrote, as unsaved-looking ``AuditEvent`` instances
    built on access (building 100,000 model instances costs more than hashing them)."""

    def __init__(self, rows: list[_Row], occurred_at: datetime, payloads: list):
        self._rows, self._at, self._payloads = rows, occurred_at, payloads

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self._rows)))]
        row = self._rows[index]
        return AuditEvent(
            seq=row.seq,
            occurred_at=self._at,
            code=row.code,
            actor_type=row.actor_type,
            actor_id=row.actor_id,
            subject_token=row.subject_token,
            object_type=row.object_type,
            object_id=row.object_id,
            payload=self._payloads[index],
            hash=row.hash,
        )


def audit_append(
    *, using: str, entries: Sequence[AuditEntry], at: datetime | None = None
) -> Sequence[AuditEvent]:
    """Append ``entries`` to the chain of database ``using``, in the caller's transaction.

    Locks the chain head row first, so concurrent writers queue instead of forking the chain;
    sequence numbers are gapless because the head moves in the same transaction as the rows.
    Opens a transaction on ``using`` if the caller has none. Returns the saved events (a
    sequence of ``AuditEvent``); on PostgreSQL, calls with ``COPY_THRESHOLD`` or more entries
    are written with COPY and the returned events have no ``pk`` (``seq`` identifies them).
    """
    if not entries:
        return []
    payloads = []
    for entry in entries:
        payload = dict(entry.payload)
        _check_flat(payload)
        payloads.append(payload)
    return _append_locked(
        using=using,
        at=at,
        count=len(entries),
        payloads=payloads,
        hasher=partial(_hashed, entries=entries, payloads=payloads),
    )


def audit_append_uniform(
    *,
    using: str,
    code: int,
    actor: Actor,
    object_type: str,
    items: Sequence[tuple[str, str, Mapping]],
    at: datetime | None = None,
) -> Sequence[AuditEvent]:
    """``audit_append`` for many events sharing ``code``, ``actor`` and ``object_type``: each
    item is ``(subject_token, object_id, payload)``. Same checks, chain, hashes and rows as
    ``audit_append`` with the equivalent ``AuditEntry`` list, without building one object per
    event (the bulk writers, e.g. ``memberships_apply``, append 100,000 at a time)."""
    if not items:
        return []
    payloads = []
    add_payload = payloads.append
    for item in items:
        payload = dict(item[2])
        _check_flat(payload)
        add_payload(payload)
    return _append_locked(
        using=using,
        at=at,
        count=len(items),
        payloads=payloads,
        hasher=partial(
            _hashed_uniform,
            code=int(code),
            actor=actor,
            object_type=object_type,
            items=items,
            payloads=payloads,
        ),
    )


def _append_locked(
    *, using: str, at: datetime | None, count: int, payloads: list, hasher
) -> Sequence[AuditEvent]:
    """Lock the chain head, hash with ``hasher(chain_id=, occurred=, seq=, prev=, into=)``
    (a generator of rows), store the rows (COPY on PostgreSQL for large batches, streamed: the
    database stores one chunk while the next one is hashed) and move the head, in one
    transaction on ``using``."""
    chain_id = chain_id_for(using=using)
    with transaction.atomic(using=using):
        size, head_hash = _lock_head(using=using, chain_id=chain_id)
        # The time is taken under the lock, so that times never go backwards along the chain.
        now = at or timezone.now()
        rows: list[_Row] = []
        hashed = hasher(
            chain_id=chain_id,
            occurred=format_time(now),
            seq=size,
            prev=bytes.fromhex(head_hash),
            into=rows,
        )
        events: Sequence[AuditEvent] = AppendedEvents(rows, now, payloads)
        if connections[using].vendor == "postgresql" and count >= COPY_THRESHOLD:
            _copy_rows(using=using, rows=hashed, occurred_at=now)
        else:
            for _ in hashed:
                pass
            events = list(events)
            AuditEvent.objects.using(using).bulk_create(events, batch_size=2000)
        _advance_head(using=using, chain_id=chain_id, size=rows[-1].seq, head_hash=rows[-1].hash)
    return events


def _hashed_uniform(
    *, chain_id, occurred, seq, prev, code, actor, object_type, items, payloads, into: list
) -> Iterator[_Row]:
    """``_hashed`` for entries sharing code, actor and object type: ``items`` are
    ``(subject_token, object_id, payload)``."""
    if type(chain_id) is not str or type(actor.kind) is not str or type(actor.id) is not str:
        raise AuditPayloadError("chain id and actor must be strings")
    append_row = into.append
    kind, actor_id = actor.kind, actor.id
    for (token, object_id, _), payload in zip(items, payloads, strict=True):
        seq += 1
        payload_json = canonical_json(payload)
        prev = entry_hash(
            prev=prev,
            chain_id=chain_id,
            seq=seq,
            occurred_at=occurred,
            code=code,
            actor_type=kind,
            actor_id=actor_id,
            subject_token=token,
            object_type=object_type,
            object_id=object_id,
            payload=payload,
        )
        row = _Row(
            seq, code, kind, actor_id, token, object_type, object_id, payload_json, prev.hex()
        )
        append_row(row)
        yield row


def _hashed(*, chain_id, occurred, seq, prev, entries, payloads, into: list) -> Iterator[_Row]:
    """Sequence and hash ``entries`` (after ``seq`` and hash ``prev``); each row is appended to
    ``into`` and yielded."""
    append_row = into.append
    for entry, payload in zip(entries, payloads, strict=True):
        seq += 1
        code = int(entry.code)
        actor = entry.actor
        payload_json = canonical_json(payload)
        prev = entry_hash(
            prev=prev,
            chain_id=chain_id,
            seq=seq,
            occurred_at=occurred,
            code=code,
            actor_type=actor.kind,
            actor_id=actor.id,
            subject_token=entry.subject_token,
            object_type=entry.object_type,
            object_id=entry.object_id,
            payload=payload,
        )
        row = _Row(
            seq,
            code,
            actor.kind,
            actor.id,
            entry.subject_token,
            entry.object_type,
            entry.object_id,
            payload_json,
            prev.hex(),
        )
        append_row(row)
        yield row


_COPY_SQL = (
    "COPY audit_auditevent (seq, occurred_at, code, actor_type, actor_id, subject_token, "
    "object_type, object_id, payload, hash) FROM STDIN"
)
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")


def _copy_field(value: str) -> str:
    """A text value in COPY's text format (backslash, tab, newline, CR escaped)."""
    if _COPY_SPECIAL.search(value) is None:
        return value
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def _copy_rows(*, using: str, rows: Iterable[_Row], occurred_at: datetime) -> None:
    """Write ``rows`` with PostgreSQL COPY in text format, built from the tuples directly and
    sent in chunks as they come."""
    occurred = occurred_at.isoformat()
    with connections[using].cursor() as cursor:
        with cursor.cursor.copy(_COPY_SQL) as copy:
            lines: list[str] = []
            add = lines.append
            for row in rows:
                line = (
                    f"{row.seq}\t{occurred}\t{row.code}\t{row.actor_type}\t{row.actor_id}\t"
                    f"{row.subject_token}\t{row.object_type}\t{row.object_id}\t"
                    f"{row.payload_json}\t{row.hash}"
                )
                if "\\" in line or "\n" in line or "\r" in line or line.count("\t") != 9:
                    line = "\t".join(
                        _copy_field(str(value))
                        for value in (
                            row.seq,
                            occurred,
                            row.code,
                            row.actor_type,
                            row.actor_id,
                            row.subject_token,
                            row.object_type,
                            row.object_id,
                            row.payload_json,
                            row.hash,
                        )
                    )
                add(line)
                if len(lines) == 2000:
                    copy.write("\n".join(lines) + "\n")
                    lines.clear()
            if lines:
                copy.write("\n".join(lines) + "\n")


def _lock_head(*, using: str, chain_id: str) -> tuple[int, str]:
    """Lock the chain head (created at genesis if missing): ``(size, head hash)``.

    PostgreSQL: through ``audit_head_lock``, an owner-defined function (the runtime role has no
    UPDATE or INSERT on the head). SQLite: an UPDATE takes the database's write lock."""
    if is_postgresql(using):
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT head_size, head_value FROM audit_head_lock(%s)", [chain_id])
            return cursor.fetchone()
    heads = AuditChainHead.objects.using(using)
    if not heads.filter(chain_id=chain_id).update(size=F("size")):
        heads.get_or_create(chain_id=chain_id, defaults={"size": 0, "head_hash": GENESIS})
    return heads.filter(chain_id=chain_id).values_list("size", "head_hash").get()


def _advance_head(*, using: str, chain_id: str, size: int, head_hash: str) -> None:
    """Move the head to ``size``/``head_hash``. PostgreSQL: ``audit_head_advance`` checks that
    the entries up to ``size`` exist and end with that hash (and clears the membership changes
    these entries audit)."""
    if is_postgresql(using):
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT audit_head_advance(%s, %s, %s)", [chain_id, size, head_hash])
        return
    AuditChainHead.objects.using(using).filter(chain_id=chain_id).update(
        size=size, head_hash=head_hash
    )
