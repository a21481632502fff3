"""The one write path of segment memberships: bulk, consent-checked, audited, per region.

``memberships_apply`` takes any number of subjects (across regions), and per region, in ONE
transaction of that region's database:

1. locks the segment's memberships of that region (PostgreSQL advisory lock); every stay it
   inserts or closes is audited before commit, or PostgreSQL refuses the commit
   (``compliance.db_guards``; stays close through ``segments_stays_close``);
2. looks up the subjects (unknown or merged ones are refused), asks the enter blockers
   (``compliance.hooks.enter_blocked``, e.g. a DSAR restriction) and checks consent for all of
   them at once (``consent_gate_positions``: the rules of ``can_process_bulk`` against the
   segment's required purposes; fail closed);
3. skips enters of current members and exits of non-members (reported as ``unchanged``);
4. gives each new stay its holdout arm (``segments.holdout``: ``control`` when ``u(salt,
   subject) < control_group_share``, else ``treatment``; no salt, never activated: treatment):
   a function of salt and subject id, so it never changes while the salt stands, and a merged
   subject (refused) enters only as its survivor, in the survivor's arm. Then it writes the
   new membership rows (``COPY`` on PostgreSQL, ``bulk_create`` elsewhere), closes
   exited stays through the one stay-closing primitive (``segments.services.exits``), and
   appends one MEMBERSHIP_ENTERED or MEMBERSHIP_EXITED audit event per change to the region's
   chain (payload ``reason``, ``membership_id``, ``arm``), then one change-feed outbox row per
   change, carrying the arm (control changes reach only subscriptions that opt in).

Only active segments accept enters (others are refused with ``segment_not_active``); exits are
always accepted. Refused subjects are returned with their reason and nothing is written for
them. Quirk: consent is checked inside the region transaction, but a withdrawal committed by
another transaction between that check and our commit is only caught by the withdrawal's own
follow-through (``memberships_exit_for_purposes``) if it commits after us.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from compliance import hooks
from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, audit_append, audit_append_uniform
from compliance.consent.selectors.evaluation import consent_gate_positions
from compliance.feed.services.outbox import membership_changes_record
from compliance.models import Subject
from compliance.regions import region_alias, regions
from segments import sql
from segments.holdout import holdout_arms
from segments.models import ENTER_REASONS, ExitReason, Segment, Status
from segments.selectors.segments import segments_requiring
from segments.services.errors import MembershipInputError
from segments.services.exits import memberships_close, memberships_exit_subjects

__all__ = [
    "CONSENT_EXIT_REASONS",
    "ApplyResult",
    "MembershipInputError",
    "SubjectRef",
    "memberships_apply",
    "memberships_exit_all",
    "memberships_exit_for_purposes",
    "on_consent_basis_lost",
]


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


def _as_uuid(value) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


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
    by_region = _by_region(enter_refs, exit_refs, result)
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


def _by_region(
    enter_refs: dict[UUID, str | None], exit_refs: dict[UUID, str | None], result: ApplyResult
) -> dict[str, tuple[list[UUID], list[UUID]]]:
    """region -> (enters, exits); subjects of no known region are refused ``unknown_subject``
    (the control directory is asked only for subjects passed without a region)."""
    unknown = [sid for sid, region in {**enter_refs, **exit_refs}.items() if region is None]
    directory = sql.directory_regions(subject_ids=unknown)
    by_region: dict[str, tuple[list[UUID], list[UUID]]] = {}
    known_regions = frozenset(regions())
    for refs, slot in ((enter_refs, 0), (exit_refs, 1)):
        for sid, region in refs.items():
            region = region or directory.get(sid)
            if region is None or region not in known_regions:
                result.refused[sid] = "unknown_subject"
                continue
            by_region.setdefault(region, ([], []))[slot].append(sid)
    return by_region


@dataclass
class _Batch:
    """One region's share of a ``memberships_apply`` call. The hot path works by position in
    ``enters`` (no UUID is hashed or formatted twice for the 100,000-subject case); ``tokens``,
    ``merged``, ``member`` and ``texts`` are per position of ``enters + exits``."""

    region: str
    alias: str
    segment: Segment
    reason: str
    actor: Actor
    result: ApplyResult
    enters: list[UUID]
    exits: list[UUID]
    texts: list[str] | None
    tokens: list[str | None]
    merged: list[bool]
    member: list[bool]

    def texts_at(self, positions: list[int]) -> list[str] | None:
        texts = self.texts
        return None if texts is None else [texts[i] for i in positions]


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
    """One region, one transaction: lock, look up, gate, write enters, close exits, outbox."""
    alias = region_alias(region=region)
    with transaction.atomic(using=alias):
        sql.segment_lock(alias=alias, segment_key=segment.key)
        ids = enters + exits
        texts = sql.subject_texts(alias=alias, subject_ids=ids)
        tokens, merged, member = sql.subject_columns(
            alias=alias, ids=ids, segment_key=segment.key, texts=texts
        )
        batch = _Batch(
            region=region,
            alias=alias,
            segment=segment,
            reason=reason,
            actor=actor,
            result=result,
            enters=enters,
            exits=exits,
            texts=texts,
            tokens=tokens,
            merged=merged,
            member=member,
        )
        candidates, events = _consent_gate(batch, _enter_candidates(batch))
        now = timezone.now()
        entered = _write_enters(batch, candidates, events, now)
        exited = _write_exits(batch, now)
        # the change feed's outbox, after the audit entries
        membership_changes_record(
            using=alias,
            segment_key=segment.key,
            entered=entered,
            exited=exited,
            reason=reason,
            at=now,
        )


def _enter_candidates(batch: _Batch) -> list[int]:
    """Positions in ``enters`` that may enter: refuses unknown and merged subjects and those an
    enter blocker names; current members are ``unchanged`` (``already_member``)."""
    enters, tokens, merged, member = batch.enters, batch.tokens, batch.merged, batch.member
    refused = batch.result.refused
    candidates: list[int] = []
    add = candidates.append
    for i in range(len(enters)):
        if tokens[i] is None:
            refused[enters[i]] = "unknown_subject"
        elif merged[i]:
            refused[enters[i]] = "merged_subject"
        else:
            add(i)
    blocked = hooks.enter_blocked(region=batch.region, subject_ids=[enters[i] for i in candidates])
    if blocked:
        blocked = {_as_uuid(sid): why for sid, why in blocked.items()}
        refused.update(blocked)
        candidates = [i for i in candidates if enters[i] not in blocked]
    if any(member[i] for i in candidates):
        for i in candidates:
            if member[i]:
                batch.result.unchanged[enters[i]] = "already_member"
        candidates = [i for i in candidates if not member[i]]
    return candidates


def _consent_gate(batch: _Batch, candidates: list[int]) -> tuple[list[int], list[list[int]]]:
    """The candidates whose consent covers every required purpose, with the consent event ids
    that allow each; the others are refused ``no_consent:<purpose>``."""
    purposes = list(batch.segment.required_purposes)
    if not (purposes and candidates):
        return candidates, [[] for _ in candidates]
    enters = batch.enters
    texts = batch.texts_at(candidates)
    gate_refused, events = consent_gate_positions(
        region=batch.region,
        subject_ids=[enters[i] for i in candidates],
        purposes=purposes,
        id_array=None if texts is None else sql.uuid_array(texts),
        merged_excluded=True,  # refused before as ``merged_subject``
    )
    if not gate_refused:
        return candidates, events
    for j, purpose in gate_refused.items():
        batch.result.refused[enters[candidates[j]]] = f"no_consent:{purpose}"
    kept = [j for j, ev in enumerate(events) if ev is not None]
    return [candidates[j] for j in kept], [events[j] for j in kept]


def _write_enters(
    batch: _Batch, candidates: list[int], events: list[list[int]], now: datetime
) -> list[tuple[int, UUID, str]]:
    """Insert the stays of ``candidates``, each in its holdout arm, and append one
    MEMBERSHIP_ENTERED each; returns the new ``(membership id, subject id, arm)``."""
    segment, reason = batch.segment, batch.reason
    key = segment.key
    entered = [batch.enters[i] for i in candidates]
    texts = batch.texts_at(candidates)
    arms = holdout_arms(
        salt=segment.holdout_salt,
        share=segment.control_group_share,
        subject_texts=texts if texts is not None else map(str, entered),
    )
    new_ids = sql.stays_insert(
        alias=batch.alias,
        key=key,
        at=now,
        reason=reason,
        subject_ids=entered,
        texts=texts,
        events=events,
        arms=arms,
    )
    batch.result.entered.extend(entered)
    tokens = batch.tokens
    audit_append_uniform(
        using=batch.alias,
        code=AuditCode.MEMBERSHIP_ENTERED,
        actor=batch.actor,
        object_type="segment",
        items=[
            (tokens[i], key, {"reason": reason, "membership_id": pk, "arm": arm})
            for i, pk, arm in zip(candidates, new_ids, arms, strict=True)
        ],
        at=now,
    )
    return list(zip(new_ids, entered, arms, strict=True))


def _write_exits(batch: _Batch, now: datetime) -> list[tuple[int, UUID, str]]:
    """Close the stays of ``exits`` in the segment (``memberships_close``) and append their
    MEMBERSHIP_EXITED entries; exits of non-members are ``unchanged`` (``not_a_member``).
    Returns the closed ``(membership id, subject id, arm)``."""
    exits = batch.exits
    if not exits:
        return []
    exit_tokens = zip(exits, batch.tokens[len(batch.enters) :], strict=True)
    closed = memberships_close(
        alias=batch.alias,
        subject_ids=exits,
        reason=batch.reason,
        actor=batch.actor,
        at=now,
        tokens={sid: token for sid, token in exit_tokens if token is not None},
        segment_keys=[batch.segment.key],
    )
    gone = [sid for _, sid, _ in closed.stays]
    closed_ids = set(gone)
    for sid in exits:
        if sid not in closed_ids:
            batch.result.unchanged[sid] = "not_a_member"
    audit_append(using=batch.alias, entries=closed.entries, at=now)
    batch.result.exited.extend(gone)
    return [(pk, sid, closed.arm(pk)) for pk, sid, _ in closed.stays]


def memberships_exit_all(*, region: str, subject_id: UUID, reason: str, actor: Actor) -> int:
    """Close every active stay of ``subject_id`` (DSAR restriction, erasure); one
    MEMBERSHIP_EXITED event per exit. Runs in (or joins) a transaction of the region.
    Returns the number of exits."""
    return memberships_exit_subjects(
        region=region, subject_ids=[_as_uuid(subject_id)], reason=reason, actor=actor
    )


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
    exit_reason = CONSENT_EXIT_REASONS.get(reason, ExitReason.CONSENT_WITHDRAWN)
    keys = segments_requiring(purposes=purposes)
    if not keys:
        return 0
    alias = region_alias(region=region)
    with transaction.atomic(using=alias):
        merged = Subject.objects.using(alias).filter(merged_into=subject_id)
        return memberships_exit_subjects(
            region=region,
            subject_ids=[subject_id, *merged.values_list("pk", flat=True)],
            reason=exit_reason,
            actor=actor,
            segment_keys=keys,
        )


def on_consent_basis_lost(*, region, subject_id, purposes, reason, actor) -> None:
    """The hook handler registered in ``SegmentsConfig.ready``."""
    memberships_exit_for_purposes(
        region=region,
        subject_id=_as_uuid(subject_id),
        purposes=purposes,
        reason=reason,
        actor=actor,
    )
