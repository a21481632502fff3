"""The one write path of the audit log."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import NamedTuple

from django.db import transaction
from django.utils import timezone

from compliance.audit import sql
from compliance.audit.hashing import GENESIS, canonical_json, entry_hash, format_time
from compliance.audit.models import AuditEvent
from compliance.errors import ApplicationError

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


class _Collected(threading.local):
    """Per thread: alias -> the entries and latest time of an open ``audit_collected`` block."""

    def __init__(self) -> None:
        self.blocks: dict[str, _Block] = {}


@dataclass
class _Block:
    entries: list[AuditEntry] = field(default_factory=list)
    at: datetime | None = None
    #: the chain head as the caller locked it in this transaction (``audit_head_held``)
    head: tuple[int, str] | None = None


_collected = _Collected()


@contextmanager
def audit_collected(*, using: str, ends_transaction: bool = False) -> Iterator[None]:
    """Gather the ``audit_append`` (and ``audit_append_uniform``) calls on ``using`` made inside
    the block into ONE append when it ends normally: the entries in call order, at the latest
    ``at`` a call gave (else the time under the chain lock), in the caller's transaction, which
    must be open around the block (an error inside discards the entries with the rollback).
    Payloads are still checked at each call; inside the block those calls return an empty
    sequence. A block inside another on the same alias joins it.

    ``ends_transaction``: the block ends where the caller's transaction does (nothing runs
    between them); the append may then end it in its own round trip (``commit`` of
    ``audit_append``)."""
    if using in _collected.blocks:
        yield
        return
    block = _collected.blocks[using] = _Block()
    try:
        yield
    finally:
        del _collected.blocks[using]
    if block.entries:
        audit_append(
            using=using,
            entries=block.entries,
            at=block.at,
            head=block.head,
            commit=ends_transaction,
        )


@contextmanager
def audit_collected_transaction(*, using: str) -> Iterator[None]:
    """A transaction on ``using`` whose ``audit_append`` calls are collected into ONE append
    at its end (``audit_collected``), and that append ends it: nothing runs between the two
    ends, so on PostgreSQL COMMIT goes in the append's round trip when the transaction is the
    caller's own (``compliance.db.batch.statements_run``)."""
    with transaction.atomic(using=using), audit_collected(using=using, ends_transaction=True):
        yield


def audit_head_lock_sql(*, using: str) -> tuple[str, list]:
    """The statement (SQL, params) that locks the chain head of ``using`` and answers ``(size,
    head hash)``, for a caller that sends it with its own statements in one round trip
    (PostgreSQL), then hands the row to ``audit_head_held``."""
    return sql.HEAD_LOCK, [chain_id_for(using=using)]


def audit_collecting(*, using: str) -> bool:
    """Whether an ``audit_collected`` block is open on ``using`` (this thread): appends made
    now are collected, and ``audit_append_sql`` is refused."""
    return using in _collected.blocks


def audit_head_wanted(*, using: str) -> bool:
    """Whether an ``audit_collected`` block is open on ``using`` and its caller has not locked
    the chain head yet (then it may lock it with its own statements: ``audit_head_lock_sql``)."""
    block = _collected.blocks.get(using)
    return block is not None and block.head is None


def audit_head_held(*, using: str, head: tuple[int, str]) -> None:
    """The caller's transaction locked the chain head of ``using`` (``audit_head_lock_sql``)
    and read ``head``: the open ``audit_collected`` block appends from it without locking
    again. The lock is held to the end of the transaction, so the head cannot move meanwhile."""
    block = _collected.blocks.get(using)
    if block is None:
        raise RuntimeError("audit_head_held needs an open audit_collected block on " + using)
    block.head = (int(head[0]), str(head[1]))


def audit_append_sql(
    *, using: str, entries: Sequence[AuditEntry], head: tuple[int, str]
) -> tuple[str, list]:
    """The ONE statement (SQL, params) that appends ``entries`` (at least one, fewer than
    ``sql.COPY_THRESHOLD``) to the chain of ``using`` after ``head`` and moves the head over
    them, for a caller whose transaction locked the head (``audit_head_lock_sql``) and read
    ``head``, and sends this with its own statements in one round trip (PostgreSQL). The
    entries are checked and hashed now, at the time taken now (under the caller's lock). Not
    inside an ``audit_collected`` block on ``using`` (that block appends its entries itself)."""
    if audit_collecting(using=using):
        raise RuntimeError("audit_append_sql inside an audit_collected block on " + using)
    if not entries or len(entries) >= sql.COPY_THRESHOLD:
        raise ValueError(f"audit_append_sql takes 1 to {sql.COPY_THRESHOLD - 1} entries")
    payloads = _checked_payloads(entries)
    chain_id = chain_id_for(using=using)
    now = timezone.now()
    rows = list(
        _hashed(
            chain_id=chain_id,
            occurred=format_time(now),
            seq=int(head[0]),
            prev=bytes.fromhex(head[1]),
            entries=entries,
            payloads=payloads,
            into=[],
        )
    )
    return sql.insert_arrays_sql(rows=rows, occurred_at=now, advance=(chain_id, rows[-1]))


def _checked_payloads(entries: Sequence[AuditEntry]) -> list[dict]:
    """Each entry's payload as a plain dict, checked (``_check_flat``: no personal data)."""
    payloads = []
    for entry in entries:
        payload = dict(entry.payload)
        _check_flat(payload)
        payloads.append(payload)
    return payloads


def _collect(*, using: str, entries: Sequence[AuditEntry], at: datetime | None) -> bool:
    """Queue ``entries`` in the open ``audit_collected`` block of ``using``; false if none."""
    block = _collected.blocks.get(using)
    if block is None:
        return False
    block.entries.extend(entries)
    if at is not None and (block.at is None or at > block.at):
        block.at = at
    return True


def audit_append(
    *,
    using: str,
    entries: Sequence[AuditEntry],
    at: datetime | None = None,
    head: tuple[int, str] | None = None,
    commit: bool = False,
) -> Sequence[AuditEvent]:
    """Append ``entries`` to the chain of database ``using``, in the caller's transaction.

    Locks the chain head row first, so concurrent writers queue instead of forking the chain;
    sequence numbers are gapless because the head moves in the same transaction as the rows.
    Opens a transaction on ``using`` if the caller has none. Returns the saved events (a
    sequence of ``AuditEvent``; empty inside an ``audit_collected`` block, which appends them
    later); on PostgreSQL, calls with ``sql.COPY_THRESHOLD`` or more entries
    are written with COPY and the returned events have no ``pk`` (``seq`` identifies them).
    ``head``: the chain head as the caller's transaction locked and read it (the closing
    ``audit_collected`` block passes what ``audit_head_held`` recorded); not locked again.
    ``commit``: the append is the last write of the caller's own transaction, and nothing that
    can fail runs after it there: a small append on PostgreSQL then ends the transaction in
    its round trip (``compliance.db.batch.statements_run``).
    """
    if not entries:
        return []
    payloads = _checked_payloads(entries)
    if _collect(using=using, entries=entries, at=at):
        return ()
    return _append_locked(
        using=using,
        at=at,
        count=len(entries),
        payloads=payloads,
        hasher=partial(_hashed, entries=entries, payloads=payloads),
        head=head,
        commit=commit,
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
    if using in _collected.blocks:  # as the equivalent entries
        entries = [
            AuditEntry(code, actor, token, object_type, object_id, payload)
            for token, object_id, payload in items
        ]
        return audit_append(using=using, entries=entries, at=at)
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
    *,
    using: str,
    at: datetime | None,
    count: int,
    payloads: list,
    hasher,
    head: tuple[int, str] | None = None,
    commit: bool = False,
) -> Sequence[AuditEvent]:
    """Lock the chain head (unless the caller's transaction holds it: ``head``), hash with
    ``hasher(chain_id=, occurred=, seq=, prev=, into=)`` (a generator of rows), store the rows
    and move the head (``sql.events_store_advanced``: as they are hashed; one statement for a
    small append on PostgreSQL), in one transaction on ``using``."""
    chain_id = chain_id_for(using=using)
    # no savepoint: no caller recovers from a failed append inside its own transaction
    with transaction.atomic(using=using, savepoint=False):
        size, head_hash = head or sql.head_lock(using=using, chain_id=chain_id, genesis=GENESIS)
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
        return sql.events_store_advanced(
            using=using,
            chain_id=chain_id,
            rows=hashed,
            count=count,
            occurred_at=now,
            events=AppendedEvents(rows, now, payloads),
            commit=commit,
        )


def _hashed_uniform(
    *, chain_id, occurred, seq, prev, code, actor, object_type, items, payloads, into: list
) -> Iterator[_Row]:
    """``_hashed`` for entries sharing code, actor and object type: ``items`` are
    ``(subject_token, object_id, payload)``."""
    if type(chain_id) is not str or type(actor.kind) is not str or type(actor.id) is not str:
        raise AuditPayloadError("chain id and actor must be strings")
    kind, actor_id = actor.kind, actor.id
    fields = (
        (code, kind, actor_id, token, object_type, object_id, payload)
        for (token, object_id, _), payload in zip(items, payloads, strict=True)
    )
    return _chained(
        chain_id=chain_id, occurred=occurred, seq=seq, prev=prev, fields=fields, into=into
    )


def _hashed(*, chain_id, occurred, seq, prev, entries, payloads, into: list) -> Iterator[_Row]:
    """Sequence and hash ``entries`` (after ``seq`` and hash ``prev``); each row is appended to
    ``into`` and yielded."""
    fields = (
        (
            int(entry.code),
            entry.actor.kind,
            entry.actor.id,
            entry.subject_token,
            entry.object_type,
            entry.object_id,
            payload,
        )
        for entry, payload in zip(entries, payloads, strict=True)
    )
    return _chained(
        chain_id=chain_id, occurred=occurred, seq=seq, prev=prev, fields=fields, into=into
    )


def _chained(
    *, chain_id: str, occurred: str, seq: int, prev: bytes, fields: Iterable[tuple], into: list
) -> Iterator[_Row]:
    """The rows of ``fields`` (``code, actor_type, actor_id, subject_token, object_type,
    object_id, payload``), numbered after ``seq`` and hashed after ``prev`` with
    ``hashing.entry_hash``; each row is appended to ``into`` and yielded."""
    append_row = into.append
    for code, a_type, a_id, token, o_type, o_id, payload in fields:
        seq += 1
        payload_json = canonical_json(payload)
        prev = entry_hash(
            prev=prev,
            chain_id=chain_id,
            seq=seq,
            occurred_at=occurred,
            code=code,
            actor_type=a_type,
            actor_id=a_id,
            subject_token=token,
            object_type=o_type,
            object_id=o_id,
            payload=payload,
        )
        row = _Row(seq, code, a_type, a_id, token, o_type, o_id, payload_json, prev.hex())
        append_row(row)
        yield row
