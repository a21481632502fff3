"""The one write path of segment memberships: bulk, consent-checked, audited, per region.

``memberships_apply`` takes any number of subjects (across regions), and per region, in ONE
transaction of that region's database:

1. locks the segment's memberships of that region (PostgreSQL advisory lock) and opens the
   ``membership_service`` write path (the trigger refuses any other writer);
2. looks up the subjects (unknown or merged ones are refused), asks the enter blockers
   (``compliance.hooks.enter_blocked``, e.g. a DSAR restriction) and checks consent for all of
   them at once (``can_process_bulk`` against the segment's required purposes; fail closed);
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

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import psycopg
from django.db import connections, transaction
from django.utils import timezone

from compliance import hooks
from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, AuditEntry, audit_append
from compliance.db_guards import SETTING as WRITE_PATH_SETTING
from compliance.db_guards import write_path
from compliance.feed.services.outbox import membership_changes_record, membership_stays_exited
from compliance.models import Subject, SubjectDirectory
from compliance.regions import region_alias, regions
from segments.models import ENTER_REASONS, ExitReason, Segment, SegmentMembership, Status

TABLE = SegmentMembership._meta.db_table
#: write paths under which membership rows may change (the trigger accepts the same)
WRITE_PATHS = ("membership_service", "erasure", "retention")
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


class MembershipInputError(ValueError):
    """Bad arguments (unknown reason, a subject both entering and exiting)."""


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


@contextlib.contextmanager
def membership_write_path(*, using: str) -> Iterator[None]:
    """Open the ``membership_service`` path unless the caller's transaction already opened one
    that may write memberships (erasure, retention); keeps the caller's path afterwards."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting(%s, true)", [WRITE_PATH_SETTING])
        current = cursor.fetchone()[0] or ""
    if current in WRITE_PATHS:
        yield
        return
    with write_path(using=using, path="membership_service"):
        yield


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


def _consent_refusals(
    *, region: str, subject_ids: Sequence[UUID], purposes: Sequence[str]
) -> tuple[dict[UUID, str], dict[UUID, list[int]]]:
    """(refused subject -> reason, allowed subject -> consent event ids), in one bulk call."""
    if not purposes or not subject_ids:
        return {}, {sid: [] for sid in subject_ids}
    from compliance.consent.selectors.evaluation import consent_gate

    refused, allowed = consent_gate(region=region, subject_ids=subject_ids, purposes=purposes)
    return {sid: f"no_consent:{purpose}" for sid, purpose in refused.items()}, allowed


def _insert(alias: str, rows: list[tuple[UUID, str, datetime, str, list[int]]]) -> list[int]:
    """Insert new stays; returns their ids in order. COPY on PostgreSQL."""
    if not rows:
        return []
    if _is_pg(alias):
        connection = connections[alias]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [TABLE, len(rows)],
            )
            ids = [row[0] for row in cursor.fetchall()]
            columns = (
                "id, subject_id, segment_key, entered_at, entered_reason, exited_at, "
                "exited_reason, consent_event_ids"
            )
            # every value is an int, a UUID, a slug, an ISO time or a JSON list of ints: no
            # character needs escaping in COPY's text format
            stamps: dict[datetime, str] = {}
            with cursor.cursor.copy(f"COPY {TABLE} ({columns}) FROM STDIN") as copy:
                # sent in chunks as built: the database stores one while the next is built
                for start in range(0, len(rows), 2000):
                    copy.write(
                        "".join(
                            f"{pk}\t{sid}\t{key}\t"
                            f"{stamps.get(at) or stamps.setdefault(at, at.isoformat())}\t"
                            f"{reason}\t\\N\t\t[{','.join(map(str, events))}]\n"
                            for pk, (sid, key, at, reason, events) in zip(
                                ids[start : start + 2000], rows[start : start + 2000], strict=True
                            )
                        )
                    )
        return ids
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
    if _is_pg(alias):
        with connections[alias].cursor() as cursor:
            cursor.execute(
                f"UPDATE {TABLE} SET exited_at = %s, exited_reason = %s WHERE segment_key = %s "
                "AND exited_at IS NULL AND subject_id = ANY(%s) RETURNING id, subject_id",
                [at, reason, segment_key, list(subject_ids)],
            )
            return sorted((pk, _as_uuid(sid)) for pk, sid in cursor.fetchall())
    closed: list[tuple[int, UUID]] = []
    for chunk in _chunks(subject_ids):
        rows = list(
            SegmentMembership.objects.using(alias)
            .filter(segment_key=segment_key, exited_at__isnull=True, subject_id__in=chunk)
            .values_list("id", "subject_id")
        )
        SegmentMembership.objects.using(alias).filter(id__in=[pk for pk, _ in rows]).update(
            exited_at=at, exited_reason=reason
        )
        closed.extend(rows)
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
    both = set(enter_refs) & set(exit_refs)
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
    for refs, slot in ((enter_refs, 0), (exit_refs, 1)):
        for sid, region in refs.items():
            region = region or directory.get(sid)
            if region is None or region not in regions():
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
    alias = region_alias(region=region)
    key = segment.key
    with transaction.atomic(using=alias), membership_write_path(using=alias):
        _lock_segment(alias, key)
        subjects, members = _subjects(alias, enters + exits, key)
        candidates = []
        for sid in enters:
            known = subjects.get(sid)
            if known is None:
                result.refused[sid] = "unknown_subject"
            elif known[1]:
                result.refused[sid] = "merged_subject"
            else:
                candidates.append(sid)
        blocked = hooks.enter_blocked(region=region, subject_ids=candidates)
        if blocked:
            for sid, why in blocked.items():
                result.refused[_as_uuid(sid)] = why
            candidates = [sid for sid in candidates if sid not in result.refused]
        members = members.intersection(candidates)
        for sid in members:
            result.unchanged[sid] = "already_member"
        candidates = [sid for sid in candidates if sid not in members]
        refused, allowed = _consent_refusals(
            region=region, subject_ids=candidates, purposes=list(segment.required_purposes)
        )
        result.refused.update(refused)
        now = timezone.now()
        new_rows = [(sid, key, now, reason, allowed[sid]) for sid in candidates if sid in allowed]
        new_ids = _insert(alias, new_rows)
        entries = [
            _entry(
                AuditCode.MEMBERSHIP_ENTERED,
                actor=actor,
                token=subjects[row[0]][0],
                segment_key=key,
                reason=reason,
                membership_id=pk,
            )
            for pk, row in zip(new_ids, new_rows, strict=True)
        ]
        result.entered.extend(row[0] for row in new_rows)
        closed = _close(alias, key, exits, now, reason)
        closed_ids = {sid for _, sid in closed}
        for sid in exits:
            if sid not in closed_ids:
                result.unchanged[sid] = "not_a_member"
        entries.extend(
            _entry(
                AuditCode.MEMBERSHIP_EXITED,
                actor=actor,
                token=subjects.get(sid, ("",))[0],
                segment_key=key,
                reason=reason,
                membership_id=pk,
            )
            for pk, sid in closed
        )
        result.exited.extend(sid for _, sid in closed)
        audit_append(using=alias, entries=entries, at=now)
        # the change feed's outbox (COPY on PostgreSQL), after the audit entries
        membership_changes_record(
            using=alias,
            segment_key=key,
            entered=[(pk, row[0]) for pk, row in zip(new_ids, new_rows, strict=True)],
            exited=closed,
            reason=reason,
            at=now,
        )


def _exit_stays(
    *, alias: str, stays: list[tuple[int, UUID, str]], reason: str, actor: Actor
) -> int:
    """Close the given (id, subject id, segment key) stays, one audit event each. In a
    transaction with the write path open; rows already closed by someone else are skipped."""
    if not stays:
        return 0
    now = timezone.now()
    locked = list(
        SegmentMembership.objects.using(alias)
        .select_for_update()
        .filter(id__in=[pk for pk, _, _ in stays], exited_at__isnull=True)
        .order_by("id")
        .values_list("id", "subject_id", "segment_key")
    )
    if not locked:
        return 0
    SegmentMembership.objects.using(alias).filter(id__in=[pk for pk, _, _ in locked]).update(
        exited_at=now, exited_reason=reason
    )
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
    MEMBERSHIP_EXITED event per exit. Runs in (or joins) a transaction of the region; keeps a
    write path the caller opened (``erasure``, ``retention``). Returns the number of exits."""
    if reason not in ExitReason.values:
        raise MembershipInputError(f"unknown exit reason {reason!r}")
    alias = region_alias(region=region)
    with transaction.atomic(using=alias), membership_write_path(using=alias):
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
    active stay of ``subject_id`` in segments requiring any of ``purposes``, in the caller's
    transaction, one audited exit each. Returns the number of exits."""
    from segments.selectors.segments import segments_requiring

    exit_reason = CONSENT_EXIT_REASONS.get(reason, ExitReason.CONSENT_WITHDRAWN)
    keys = segments_requiring(purposes=purposes)
    if not keys:
        return 0
    alias = region_alias(region=region)
    with transaction.atomic(using=alias), membership_write_path(using=alias):
        stays = list(
            SegmentMembership.objects.using(alias)
            .filter(subject_id=subject_id, exited_at__isnull=True, segment_key__in=keys)
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
