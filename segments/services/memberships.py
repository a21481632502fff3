"""The one write path of segment memberships: bulk, consent-checked, audited, per region.

``memberships_apply`` takes any number of subjects (across regions), and per region, in ONE
transaction of that region's database:

1. locks the segment's memberships of that region (PostgreSQL advisory lock); every stay it
   inserts or closes is audited before commit, or PostgreSQL refuses the commit
   (``compliance.db_guards``; stays close through ``segments_stays_close``);
2. looks up the subjects (unknown or merged ones are refused), asks the enter blockers
   (``compliance.hooks.enter_blocked``, e.g. a DSAR restriction) and checks consent for all of
   them at once (``consent_gate_positions``: the rules of ``can_process_bulk`` against the segment's
   required purposes, grouped in SQL; fail closed);
3. skips enters of current members and exits of non-members (reported as ``unchanged``);
4. writes the new membership rows (``COPY`` on PostgreSQL, ``bulk_create`` elsewhere), closes
   exited stays (one ``UPDATE ... RETURNING``), and appends one MEMBERSHIP_ENTERED or
   MEMBERSHIP_EXITED audit event per change to the region's chain.

Only active segments accept enters (others are refused with ``segment_not_active``); exits are
always accepted. Refused subjects are returned with their reason and nothing is written for
them. Quirk: consent is checked inside the region transaction, but a withdrawal committed by
another transaction between that check and our commit is only caught by the withdrawal's own
follow-through (``memberships_exit_for_purposes``) if it commits after us.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import psycopg
from django.db import connections, transaction
from django.db.models import Q
from django.utils import timezone

from compliance import hooks
from compliance.audit.codes import AuditCode
from compliance.audit.services.append import (
    Actor,
    AuditEntry,
    audit_append,
    audit_append_uniform,
)
from compliance.db_guards import stays_close
from compliance.errors import InputError
from compliance.feed.services.outbox import membership_changes_record, membership_stays_exited
from compliance.models import Subject, SubjectDirectory
from compliance.regions import region_alias, regions
from segments.models import ENTER_REASONS, ExitReason, Segment, SegmentMembership, Status

TABLE = SegmentMembership._meta.db_table
CHUNK = 10_000


@dataclass(frozen=True)
class SubjectRef:
    """A subject whose region the caller already knows (skips the directory lookup)."""

    subject_id: UUID
    region: str


@dataclass
class ApplyResult:
    """What happened to each subject. ``unchanged`` and ``refused`` map subject -> reason."""

    entered: list[UUID] = field(default_factory=list)
    exited: list[UUID] = field(default_factory=list)
    unchanged: dict[UUID, str] = field(default_factory=dict)
    refused: dict[UUID, str] = field(default_factory=dict)


class MembershipInputError(InputError):
    """Bad arguments (unknown reason, a subject both entering and exiting)."""

    field = "reason"


def _as_uuid(value) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def _chunks(items: Sequence, size: int = CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _is_pg(alias: str) -> bool:
    return connections[alias].vendor == "postgresql"


def _pg_rows(alias: str, sql: str, params) -> list[tuple]:
    """Rows of ``sql`` run with binary parameters on the raw connection: a list of 100,000
    UUIDs travels as ONE binary ``uuid[]`` instead of a quoted literal."""
    connection = connections[alias]
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, binary=True)
        return cursor.fetchall()


#: ``unnest ... WITH ORDINALITY``: rows name the caller's subjects by position (1-based), so
#: no UUID is parsed back into Python
_IDS = "unnest(%(ids)s::text::uuid[]) WITH ORDINALITY AS t(id, i)"


def uuid_array(ids: Sequence[UUID]) -> str:
    """A PostgreSQL array literal of ``ids``: one text parameter (psycopg's per-element array
    dumper costs several microseconds per UUID)."""
    return "{" + ",".join(map(str, ids)) + "}"


def _regions_of(subject_ids: Sequence[UUID]) -> dict[UUID, str]:
    """subject id -> region, from the control directory (one query per 10,000 on SQLite)."""
    found: dict[UUID, str] = {}
    if not subject_ids:
        return found
    if _is_pg("default"):
        ids = list(subject_ids)
        rows = _pg_rows(
            "default",
            f"SELECT DISTINCT t.i, d.region FROM {_IDS} "
            f"JOIN {SubjectDirectory._meta.db_table} d ON d.subject_id = t.id",
            {"ids": uuid_array(ids)},
        )
        return {ids[i - 1]: region for i, region in rows}
    for chunk in _chunks(subject_ids):
        rows = SubjectDirectory.objects.filter(subject_id__in=chunk).values_list(
            "subject_id", "region"
        )
        found.update(rows)
    return found


def _subjects(
    alias: str, subject_ids: Sequence[UUID], segment_key: str | None = None
) -> tuple[dict[UUID, tuple[str, bool]], set[UUID]]:
    """(subject id -> (audit token, merged?) for the subjects present in ``alias``, the ones
    with an active stay in ``segment_key``), in one query on PostgreSQL."""
    out: dict[UUID, tuple[str, bool]] = {}
    if not subject_ids:
        return out, set()
    if _is_pg(alias):
        ids = list(subject_ids)
        member = "false"
        if segment_key is not None:
            member = (
                f"EXISTS (SELECT 1 FROM {TABLE} m WHERE m.segment_key = %(key)s "
                "AND m.exited_at IS NULL AND m.subject_id = t.id)"
            )
        rows = _pg_rows(
            alias,
            f"SELECT t.i, s.audit_token, s.merged_into IS NOT NULL, {member} FROM {_IDS} "
            f"JOIN {Subject._meta.db_table} s ON s.id = t.id",
            {"ids": uuid_array(ids), "key": segment_key},
        )
        members = set()
        for i, token, merged, is_member in rows:
            sid = ids[i - 1]
            out[sid] = (token, merged)
            if is_member:
                members.add(sid)
        return out, members
    for chunk in _chunks(subject_ids):
        for sid, token, merged in (
            Subject.objects.using(alias)
            .filter(pk__in=chunk)
            .values_list("id", "audit_token", "merged_into")
        ):
            out[sid] = (token, merged is not None)
    members = _active_members(alias, segment_key, list(out)) if segment_key else set()
    return out, members


def _tokens(alias: str, subject_ids) -> dict[UUID, str]:
    return {sid: token for sid, (token, _) in _subjects(alias, list(subject_ids))[0].items()}


def _lock_segment(alias: str, segment_key: str) -> None:
    if _is_pg(alias):
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"segment-members:{segment_key}"]
            )


def _active_members(alias: str, segment_key: str, subject_ids: Sequence[UUID]) -> set[UUID]:
    if not subject_ids:
        return set()
    if _is_pg(alias):
        with connections[alias].cursor() as cursor:
            cursor.execute(
                f"SELECT subject_id FROM {TABLE} WHERE segment_key = %s "
                "AND exited_at IS NULL AND subject_id = ANY(%s)",
                [segment_key, list(subject_ids)],
            )
            return {_as_uuid(row[0]) for row in cursor.fetchall()}
    members: set[UUID] = set()
    for chunk in _chunks(subject_ids):
        members.update(
            SegmentMembership.objects.using(alias)
            .filter(segment_key=segment_key, exited_at__isnull=True, subject_id__in=chunk)
            .values_list("subject_id", flat=True)
        )
    return members


def _insert(alias: str, rows: list[tuple[UUID, str, datetime, str, list[int]]]) -> list[int]:
    """Insert new stays with ``bulk_create`` (databases without COPY); ids in order."""
    objs = [
        SegmentMembership(
            subject_id=sid,
            segment_key=key,
            entered_at=at,
            entered_reason=reason,
            consent_event_ids=events,
        )
        for sid, key, at, reason, events in rows
    ]
    SegmentMembership.objects.using(alias).bulk_create(objs, batch_size=2000)
    return [obj.pk for obj in objs]


def _close(
    alias: str, segment_key: str, subject_ids: Sequence[UUID], at: datetime, reason: str
) -> list[tuple[int, UUID]]:
    """Close the active stays of ``subject_ids`` in a segment; (membership id, subject id)."""
    if not subject_ids:
        return []
    closed = []
    for chunk in _chunks(subject_ids):
        closed.extend(
            (pk, sid)
            for pk, sid, _ in stays_close(
                using=alias, at=at, reason=reason, subject_ids=chunk, segment_key=segment_key
            )
        )
    return sorted(closed)


def _entry(code, *, actor, token, segment_key, reason, membership_id) -> AuditEntry:
    return AuditEntry(
        code=code,
        actor=actor,
        subject_token=token,
        object_type="segment",
        object_id=segment_key,
        payload={"reason": reason, "membership_id": membership_id},
    )


def memberships_apply(
    *,
    segment: Segment,
    enters: Sequence[UUID | SubjectRef],
    exits: Sequence[UUID | SubjectRef],
    actor: Actor,
    reason: str = "criteria",
) -> ApplyResult:
    """Enter and exit subjects of ``segment`` (see the module docstring for the contract).

    ``reason`` is the entry reason of the enters (``criteria`` or ``manual``) and the exit
    reason of the exits (any ``ExitReason``). Raises ``MembershipInputError`` for a bad reason
    or a subject both entering and exiting; everything else is reported in the result.
    """
    if enters and reason not in ENTER_REASONS:
        raise MembershipInputError(f"enters need reason criteria or manual, not {reason!r}")
    if exits and reason not in ExitReason.values:
        raise MembershipInputError(f"unknown exit reason {reason!r}")
    enter_refs = _normalise(enters)
    exit_refs = _normalise(exits)
    both = [sid for sid in exit_refs if sid in enter_refs]
    if both:
        raise MembershipInputError(f"{len(both)} subject(s) both enter and exit")
    result = ApplyResult()
    segment = Segment.objects.get(pk=segment.pk)  # current status and purposes
    if enter_refs and segment.status != Status.ACTIVE:
        for sid in enter_refs:
            result.refused[sid] = "segment_not_active"
        enter_refs = {}
    unknown = [sid for sid, region in {**enter_refs, **exit_refs}.items() if region is None]
    directory = _regions_of(unknown)
    by_region: dict[str, tuple[list[UUID], list[UUID]]] = {}
    known_regions = frozenset(regions())
    for refs, slot in ((enter_refs, 0), (exit_refs, 1)):
        for sid, region in refs.items():
            region = region or directory.get(sid)
            if region is None or region not in known_regions:
                result.refused[sid] = "unknown_subject"
                continue
            by_region.setdefault(region, ([], []))[slot].append(sid)
    for region in sorted(by_region):
        region_enters, region_exits = by_region[region]
        _apply_region(
            region=region,
            segment=segment,
            enters=region_enters,
            exits=region_exits,
            actor=actor,
            reason=reason,
            result=result,
        )
    return result


def _normalise(items: Sequence[UUID | SubjectRef]) -> dict[UUID, str | None]:
    out: dict[UUID, str | None] = {}
    for item in items:
        if isinstance(item, SubjectRef):
            out[_as_uuid(item.subject_id)] = item.region
        else:
            out.setdefault(_as_uuid(item), None)
    return out


def _subject_columns(
    alias: str, ids: Sequence[UUID], segment_key: str, id_array: str | None
) -> tuple[list[str | None], list[bool], list[bool]]:
    """Per position of ``ids``: audit token (``None`` when the subject is not in ``alias``),
    merged?, active member of ``segment_key``? One query on PostgreSQL, which also takes a
    ``FOR KEY SHARE`` lock on the subject rows until the caller's transaction ends: consent
    writers lock the subject ``FOR UPDATE``, so a withdrawal either commits before our consent
    check reads it, or waits for our commit and then sees (and exits) the stays we wrote."""
    n = len(ids)
    tokens: list[str | None] = [None] * n
    merged = [False] * n
    member = [False] * n
    if not n:
        return tokens, merged, member
    if id_array is not None:
        rows = _pg_rows(
            alias,
            f"SELECT t.i, s.audit_token, s.merged_into IS NOT NULL, EXISTS (SELECT 1 FROM "
            f"{TABLE} m WHERE m.segment_key = %(key)s AND m.exited_at IS NULL "
            f"AND m.subject_id = t.id) FROM {_IDS} "
            # locks taken in id order, like every multi-subject FOR UPDATE (no deadlock)
            f"JOIN {Subject._meta.db_table} s ON s.id = t.id ORDER BY s.id FOR KEY SHARE OF s",
            {"ids": id_array, "key": segment_key},
        )
        for i, token, is_merged, is_member in rows:
            tokens[i - 1] = token
            if is_merged:
                merged[i - 1] = True
            if is_member:
                member[i - 1] = True
        return tokens, merged, member
    found, members = _subjects(alias, ids, segment_key)
    for i, sid in enumerate(ids):
        known = found.get(sid)
        if known is not None:
            tokens[i], merged[i] = known
            member[i] = sid in members
    return tokens, merged, member


def _apply_region(
    *,
    region: str,
    segment: Segment,
    enters: list[UUID],
    exits: list[UUID],
    actor: Actor,
    reason: str,
    result: ApplyResult,
) -> None:
    """One region, one transaction. The hot loop works by position in ``enters`` (no UUID is
    hashed or formatted twice for the 100,000-subject case)."""
    alias = region_alias(region=region)
    key = segment.key
    pg = _is_pg(alias)
    refused = result.refused
    with transaction.atomic(using=alias):
        _lock_segment(alias, key)
        ids = enters + exits
        texts = list(map(str, ids)) if pg else None
        tokens, merged, member = _subject_columns(
            alias, ids, key, "{" + ",".join(texts) + "}" if pg else None
        )
        candidates: list[int] = []  # positions in ``enters``
        add = candidates.append
        for i in range(len(enters)):
            if tokens[i] is None:
                refused[enters[i]] = "unknown_subject"
            elif merged[i]:
                refused[enters[i]] = "merged_subject"
            else:
                add(i)
        blocked = hooks.enter_blocked(region=region, subject_ids=[enters[i] for i in candidates])
        if blocked:
            blocked = {_as_uuid(sid): why for sid, why in blocked.items()}
            for sid, why in blocked.items():
                refused[sid] = why
            candidates = [i for i in candidates if enters[i] not in blocked]
        if any(member[i] for i in candidates):
            for i in candidates:
                if member[i]:
                    result.unchanged[enters[i]] = "already_member"
            candidates = [i for i in candidates if not member[i]]
        purposes = list(segment.required_purposes)
        if purposes and candidates:
            from compliance.consent.selectors.evaluation import consent_gate_positions

            gate_refused, events = consent_gate_positions(
                region=region,
                subject_ids=[enters[i] for i in candidates],
                purposes=purposes,
                id_array="{" + ",".join([texts[i] for i in candidates]) + "}" if pg else None,
                merged_excluded=True,  # refused above as ``merged_subject``
            )
            for j, purpose in gate_refused.items():
                refused[enters[candidates[j]]] = f"no_consent:{purpose}"
            if gate_refused:
                kept = [j for j, ev in enumerate(events) if ev is not None]
                candidates = [candidates[j] for j in kept]
                events = [events[j] for j in kept]
        else:
            events = [[] for _ in candidates]
        now = timezone.now()
        new_ids = _insert_enters(
            alias,
            key=key,
            at=now,
            reason=reason,
            subject_ids=[enters[i] for i in candidates],
            texts=[texts[i] for i in candidates] if pg else None,
            events=events,
        )
        entered = [enters[i] for i in candidates]
        result.entered.extend(entered)
        audit_append_uniform(
            using=alias,
            code=AuditCode.MEMBERSHIP_ENTERED,
            actor=actor,
            object_type="segment",
            items=[
                (tokens[i], key, {"reason": reason, "membership_id": pk})
                for i, pk in zip(candidates, new_ids, strict=True)
            ],
            at=now,
        )
        closed = _close(alias, key, exits, now, reason)
        if exits:
            closed_ids = {sid for _, sid in closed}
            for sid in exits:
                if sid not in closed_ids:
                    result.unchanged[sid] = "not_a_member"
            exit_tokens = dict(zip(exits, tokens[len(enters) :], strict=True))
            audit_append_uniform(
                using=alias,
                code=AuditCode.MEMBERSHIP_EXITED,
                actor=actor,
                object_type="segment",
                items=[
                    (exit_tokens.get(sid) or "", key, {"reason": reason, "membership_id": pk})
                    for pk, sid in closed
                ],
                at=now,
            )
            result.exited.extend(sid for _, sid in closed)
        # the change feed's outbox, after the audit entries
        membership_changes_record(
            using=alias,
            segment_key=key,
            entered=list(zip(new_ids, entered, strict=True)),
            exited=closed,
            reason=reason,
            at=now,
        )


def _insert_enters(
    alias: str,
    *,
    key: str,
    at: datetime,
    reason: str,
    subject_ids: list[UUID],
    texts: list[str] | None,
    events: list[list[int]],
) -> list[int]:
    """Insert new stays; returns their ids in order. PostgreSQL: ids drawn in one query, rows
    streamed with COPY (text format; ``texts`` are the subject ids already formatted)."""
    if not subject_ids:
        return []
    if texts is None:
        return _insert(
            alias,
            [(sid, key, at, reason, ev) for sid, ev in zip(subject_ids, events, strict=True)],
        )
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [TABLE, len(subject_ids)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        columns = (
            "id, subject_id, segment_key, entered_at, entered_reason, exited_at, "
            "exited_reason, consent_event_ids"
        )
        # ints, UUIDs, a slug key and reason, an ISO time, JSON lists of ints: nothing to escape
        middle = f"\t{key}\t{at.isoformat()}\t{reason}\t\\N\t\t["
        with cursor.cursor.copy(f"COPY {TABLE} ({columns}) FROM STDIN") as copy:
            for start in range(0, len(ids), 5000):
                stop = start + 5000
                copy.write(
                    "".join(
                        [
                            f"{pk}\t{text}{middle}{','.join(map(str, ev))}]\n"
                            for pk, text, ev in zip(
                                ids[start:stop], texts[start:stop], events[start:stop], strict=True
                            )
                        ]
                    )
                )
    return ids


def _exit_stays(
    *, alias: str, stays: list[tuple[int, UUID, str]], reason: str, actor: Actor
) -> int:
    """Close the given (id, subject id, segment key) stays, one audit event each, in the
    caller's transaction; rows already closed by someone else are skipped."""
    if not stays:
        return 0
    now = timezone.now()
    locked = stays_close(using=alias, at=now, reason=reason, ids=[pk for pk, _, _ in stays])
    if not locked:
        return 0
    tokens = _tokens(alias, {sid for _, sid, _ in locked})
    audit_append(
        using=alias,
        entries=[
            _entry(
                AuditCode.MEMBERSHIP_EXITED,
                actor=actor,
                token=tokens.get(sid, ""),
                segment_key=key,
                reason=reason,
                membership_id=pk,
            )
            for pk, sid, key in locked
        ],
        at=now,
    )
    membership_stays_exited(using=alias, stays=locked, reason=reason, at=now)
    return len(locked)


def memberships_exit_all(*, region: str, subject_id: UUID, reason: str, actor: Actor) -> int:
    """Close every active stay of ``subject_id`` (DSAR restriction, erasure); one
    MEMBERSHIP_EXITED event per exit. Runs in (or joins) a transaction of the region.
    Returns the number of exits."""
    if reason not in ExitReason.values:
        raise MembershipInputError(f"unknown exit reason {reason!r}")
    alias = region_alias(region=region)
    with transaction.atomic(using=alias):
        stays = list(
            SegmentMembership.objects.using(alias)
            .filter(subject_id=subject_id, exited_at__isnull=True)
            .values_list("id", "subject_id", "segment_key")
        )
        return _exit_stays(alias=alias, stays=stays, reason=reason, actor=actor)


#: consent hook reasons -> exit reasons (denial and GPC opt-out count as withdrawal)
CONSENT_EXIT_REASONS = {
    "consent_withdrawn": ExitReason.CONSENT_WITHDRAWN,
    "consent_expired": ExitReason.CONSENT_EXPIRED,
    "objection": ExitReason.OBJECTION,
    "restriction": ExitReason.RESTRICTION,
}


def memberships_exit_for_purposes(
    *, region: str, subject_id: UUID, purposes: Sequence[str], reason: str, actor: Actor
) -> int:
    """Consent follow-through (``compliance.hooks.on_consent_basis_lost`` handler): close every
    active stay of ``subject_id`` - and of the subjects merged into it, whose consent is now
    the survivor's - in segments requiring any of ``purposes``, in the caller's transaction,
    one audited exit each. Returns the number of exits."""
    from segments.selectors.segments import segments_requiring

    exit_reason = CONSENT_EXIT_REASONS.get(reason, ExitReason.CONSENT_WITHDRAWN)
    keys = segments_requiring(purposes=purposes)
    if not keys:
        return 0
    alias = region_alias(region=region)
    with transaction.atomic(using=alias):
        merged = Subject.objects.using(alias).filter(merged_into=subject_id).values("pk")
        stays = list(
            SegmentMembership.objects.using(alias)
            .filter(Q(subject_id=subject_id) | Q(subject_id__in=merged))
            .filter(exited_at__isnull=True, segment_key__in=keys)
            .values_list("id", "subject_id", "segment_key")
        )
        return _exit_stays(alias=alias, stays=stays, reason=exit_reason, actor=actor)


def on_consent_basis_lost(*, region, subject_id, purposes, reason, actor) -> None:
    """The hook handler registered in ``SegmentsConfig.ready``."""
    memberships_exit_for_purposes(
        region=region,
        subject_id=_as_uuid(subject_id),
        purposes=purposes,
        reason=reason,
        actor=actor,
    )
