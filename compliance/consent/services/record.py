"""Recording consent: the one write path of the consent ledger.

``consent_record`` (one decision) and ``consent_record_many`` (several purposes at once, as a
TCF string or a GPC header produce) each run in ONE transaction of the subject's region:

1. validate everything first (unknown purpose or source, bad decision, method, lawful basis,
   jurisdiction, notice or time raise ``ConsentInputError`` naming the field; nothing written);
2. append the ``ConsentEvent`` rows (append-only);
3. fold them into the ``ConsentState`` projection;
4. append the audit events (``CONSENT_RECORDED``, ``CONSENT_WITHDRAWN``, ``CONSENT_EXPIRED``,
   ``GPC_OPT_OUT_RECORDED``, ``TCF_SIGNAL_RECORDED``) with the payload
   ``{"purpose", "source", "decision", "method", "jurisdiction", "scope", "lawful_basis"}``;
5. when a purpose that was allowed before is no longer allowed (same source context and
   jurisdiction), call ``compliance.hooks.consent_basis_lost`` in the same transaction, with
   reason ``consent_withdrawn`` (withdrawal, denial, opt-out, invalid signal), ``objection`` or
   ``consent_expired``.

A subject that was merged into another records on the survivor.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypedDict, Unpack

from django.db import transaction
from django.utils import timezone

from compliance import hooks
from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, AuditEntry, audit_append
from compliance.consent.models import (
    NEGATIVE_DECISIONS,
    ConsentEvent,
    Decision,
    EventSource,
    LawfulBasis,
    Method,
    NoticeVersion,
    Purpose,
    Scope,
)
from compliance.consent.selectors.cached import configuration
from compliance.consent.selectors.evaluation import can_process_bulk
from compliance.consent.services.ledger import ledger_store
from compliance.errors import InputError
from compliance.models import Subject
from compliance.regions import region_alias

_JURISDICTION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")
#: how far in the future a client clock may put ``captured_at``
CLOCK_SKEW = timedelta(minutes=5)
MAX_RAW_SIGNAL = 10_000


class ConsentInputError(InputError):
    """Bad input for the consent ledger; ``field`` names the offending field."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class DecisionInput:
    purpose: str
    decision: str
    lawful_basis: str | None = None


@dataclass(frozen=True)
class Prepared:
    """Validated input, ready to be recorded for any subject."""

    items: tuple[DecisionInput, ...]
    purposes: dict[str, Purpose]
    source: EventSource
    method: str
    jurisdiction: str
    captured_at: datetime | None
    notice_version_id: int | None
    collection_point: str
    raw_signal: str
    decoder_version: str


def jurisdiction_normalize(*, jurisdiction: str | None, field: str = "jurisdiction") -> str:
    """``"fr"`` -> ``"FR"``, ``"us-ca"`` -> ``"US-CA"``; ``""`` when not given."""
    if jurisdiction is None or jurisdiction == "":
        return ""
    if not isinstance(jurisdiction, str):
        raise ConsentInputError("jurisdiction must be a string", field=field)
    value = jurisdiction.strip().upper()
    if not _JURISDICTION.match(value):
        raise ConsentInputError(
            "jurisdiction must be an ISO 3166 code such as 'FR' or 'US-CA'", field=field
        )
    return value


def default_basis(*, decision: str, purpose: Purpose) -> str:
    bases = list(purpose.lawful_bases)
    if decision == Decision.OPTED_OUT and LawfulBasis.US_OPT_OUT in bases:
        return LawfulBasis.US_OPT_OUT
    if decision == Decision.OBJECTED:
        for basis in (LawfulBasis.LEGITIMATE_INTERESTS, LawfulBasis.PUBLIC_TASK):
            if basis in bases:
                return basis
    if LawfulBasis.CONSENT in bases:
        return LawfulBasis.CONSENT
    return bases[0] if bases else LawfulBasis.CONSENT


def consent_prepare(
    *,
    decisions: Sequence[DecisionInput],
    source: str,
    method: str = Method.API,
    jurisdiction: str | None = None,
    captured_at: datetime | None = None,
    notice_version_id: int | None = None,
    collection_point: str = "",
    raw_signal: str = "",
    decoder_version: str = "",
    field_prefix: str = "decisions",
) -> Prepared:
    """Validate input without writing anything; raise ``ConsentInputError`` naming the field."""
    if not decisions:
        raise ConsentInputError("at least one decision is needed", field=field_prefix)
    config = configuration()
    source_row = config.sources.get(source) if isinstance(source, str) else None
    if source_row is None:
        raise ConsentInputError(f"unknown event source {str(source)[:64]!r}", field="source")
    if method not in Method.values:
        raise ConsentInputError(f"unknown method; use one of {Method.values}", field="method")
    purposes = {
        d.purpose: config.purposes[d.purpose]
        for d in decisions
        if isinstance(d.purpose, str) and d.purpose in config.purposes
    }
    for index, item in enumerate(decisions):
        where = f"{field_prefix}.{index}." if field_prefix else ""
        purpose = purposes.get(item.purpose)
        if purpose is None:
            raise ConsentInputError(
                f"unknown purpose {str(item.purpose)[:64]!r}", field=f"{where}purpose"
            )
        if item.decision not in Decision.values:
            raise ConsentInputError(
                f"unknown decision; use one of {Decision.values}", field=f"{where}decision"
            )
        basis = item.lawful_basis or default_basis(decision=item.decision, purpose=purpose)
        if basis not in purpose.lawful_bases:
            raise ConsentInputError(
                f"lawful basis {str(basis)[:32]!r} is not allowed for purpose {purpose.key}",
                field=f"{where}lawful_basis",
            )
    if captured_at is not None:
        if timezone.is_naive(captured_at):
            raise ConsentInputError("captured_at needs a time zone", field="captured_at")
        if captured_at > timezone.now() + CLOCK_SKEW:
            raise ConsentInputError("captured_at lies in the future", field="captured_at")
    if notice_version_id is not None:
        notice = NoticeVersion.objects.filter(pk=notice_version_id).first()
        if notice is None:
            raise ConsentInputError("unknown notice version", field="notice_version_id")
        uncovered = sorted({d.purpose for d in decisions} - set(notice.purposes))
        if uncovered:
            raise ConsentInputError(
                f"notice version does not cover purposes {', '.join(uncovered)}",
                field="notice_version_id",
            )
    if len(raw_signal) > MAX_RAW_SIGNAL:
        raise ConsentInputError("raw signal too long", field="raw_signal")
    return Prepared(
        items=tuple(decisions),
        purposes=purposes,
        source=source_row,
        method=method,
        jurisdiction=jurisdiction_normalize(jurisdiction=jurisdiction),
        captured_at=captured_at,
        notice_version_id=notice_version_id,
        collection_point=(collection_point or "")[:200],
        raw_signal=raw_signal or "",
        decoder_version=decoder_version or "",
    )


class RecordContext(TypedDict, total=False):
    """Where, how and on what notice decisions were taken (``consent_prepare``'s keywords)."""

    method: str
    jurisdiction: str | None
    captured_at: datetime | None
    notice_version_id: int | None
    collection_point: str
    raw_signal: str
    decoder_version: str


def consent_record(
    *,
    subject: Subject,
    purpose: str,
    decision: str,
    source: str,
    actor: Actor,
    lawful_basis: str | None = None,
    **context: Unpack[RecordContext],
) -> ConsentEvent:
    """Record one decision for ``subject`` (see the module docstring); returns the event.
    Errors name the fields as given here (``lawful_basis``, not ``decisions.0.lawful_basis``)."""
    decisions = [DecisionInput(purpose=purpose, decision=decision, lawful_basis=lawful_basis)]
    prepared = consent_prepare(decisions=decisions, source=source, field_prefix="", **context)
    return consent_record_prepared(subject=subject, prepared=prepared, actor=actor)[0]


def consent_record_many(
    *,
    subject: Subject,
    decisions: Sequence[DecisionInput],
    source: str,
    actor: Actor,
    **context: Unpack[RecordContext],
) -> list[ConsentEvent]:
    """Record several decisions for one subject in one transaction."""
    prepared = consent_prepare(decisions=decisions, source=source, **context)
    return consent_record_prepared(subject=subject, prepared=prepared, actor=actor)


def consent_record_prepared(
    *, subject: Subject, prepared: Prepared, actor: Actor, locked: bool = False
) -> list[ConsentEvent]:
    """Write validated input for ``subject``; one transaction in its region (no savepoint when
    the caller has one: nobody recovers from an error in here and goes on). ``locked``: the
    caller's transaction holds the row lock of ``subject``, a survivor (``for_update`` of
    ``subject_resolve_located``), so it is not taken again."""
    alias = region_alias(region=subject.region)
    now = timezone.now()
    with transaction.atomic(using=alias, savepoint=False):
        locked = locked and not subject.merged_into
        writer = subject if locked else _lock_writer(alias=alias, subject=subject)
        scope = prepared.source.consent_scope
        context_source = prepared.source.key if scope == Scope.SOURCE else None
        negative = [i.purpose for i in prepared.items if i.decision in NEGATIVE_DECISIONS]
        # an expiry is recorded after the fact: compare with the moment before it lapsed
        before_at = None
        if prepared.method == Method.EXPIRY and prepared.captured_at is not None:
            before_at = prepared.captured_at - timedelta(microseconds=1)
        before = _allowed(writer, negative, context_source, prepared.jurisdiction, at=before_at)
        events = [
            _event(subject=writer, prepared=prepared, item=item, actor=actor, now=now)
            for item in prepared.items
        ]
        # the rows, their state and the change feed's outbox rows (same transaction)
        ledger_store(alias=alias, events=events, now=now)
        audit_append(
            using=alias,
            entries=[
                AuditEntry(
                    code=audit_code(decision=e.decision, method=e.method),
                    actor=actor,
                    subject_token=writer.audit_token,
                    object_type="consent_event",
                    object_id=str(e.pk),
                    payload=audit_payload(event=e),
                )
                for e in events
            ],
        )
        if negative:
            after = _allowed(writer, negative, context_source, prepared.jurisdiction)
            _basis_lost(
                subject=writer, items=prepared.items, before=before, after=after, actor=actor
            )
    return events


def _lock_writer(*, alias: str, subject: Subject) -> Subject:
    """Lock the subject whose ledger is written (a merged subject's survivor): one writer per
    subject at a time, since the state rows are read-modify-write. One row, by primary key (the
    survivor named by ``subject`` as read), so it cannot deadlock with the id-ordered locks of
    memberships_apply; a merge since that read moves on to the new survivor."""
    subjects = Subject.objects.using(alias)
    locked = subjects.select_for_update().get(pk=subject.merged_into or subject.pk)
    if locked.merged_into:  # merged in the meantime
        locked = subjects.select_for_update().get(pk=locked.merged_into)
    return locked


def _event(
    *, subject: Subject, prepared: Prepared, item: DecisionInput, actor: Actor, now: datetime
) -> ConsentEvent:
    """One ledger row (unsaved); a grant expires after the purpose's default expiry, if any."""
    purpose = prepared.purposes[item.purpose]
    captured = prepared.captured_at or now
    expires = None
    if item.decision == Decision.GRANTED and purpose.default_expiry_days:
        expires = captured + timedelta(days=purpose.default_expiry_days)
    return ConsentEvent(
        subject_id=subject.pk,
        purpose=purpose.key,
        purpose_version=purpose.version,
        source=prepared.source.key,
        scope=prepared.source.consent_scope,
        jurisdiction=prepared.jurisdiction,
        lawful_basis=item.lawful_basis or default_basis(decision=item.decision, purpose=purpose),
        decision=item.decision,
        method=prepared.method,
        captured_at=captured,
        received_at=now,
        expires_at=expires,
        notice_version_id=prepared.notice_version_id,
        collection_point=prepared.collection_point,
        actor_type=actor.kind,
        actor_id=actor.id,
        raw_signal=prepared.raw_signal,
        decoder_version=prepared.decoder_version,
    )


def _basis_lost(
    *, subject: Subject, items: Sequence[DecisionInput], before: set, after: set, actor: Actor
) -> None:
    """``consent_basis_lost`` once per reason for the purposes allowed before and not after."""
    lost: dict[str, list[str]] = {}
    for item in items:
        if item.purpose in before and item.purpose not in after:
            lost.setdefault(loss_reason(decision=item.decision), []).append(item.purpose)
    for reason, purposes in lost.items():
        hooks.consent_basis_lost(
            region=subject.region,
            subject_id=subject.pk,
            purposes=sorted(set(purposes)),
            reason=reason,
            actor=actor,
        )


def _allowed(
    subject: Subject,
    purposes: list[str],
    source: str | None,
    jurisdiction: str,
    at: datetime | None = None,
):
    if not purposes:
        return set()
    result = can_process_bulk(
        region=subject.region,
        subject_ids=[subject.pk],
        purposes=purposes,
        source=source,
        jurisdiction=jurisdiction or None,
        at=at,
    )
    return {purpose for (_, purpose), decision in result.items() if decision.allowed}


def audit_code(*, decision: str, method: str) -> AuditCode:
    if method == Method.TCF_STRING:
        return AuditCode.TCF_SIGNAL_RECORDED
    if method == Method.GPC_HEADER:
        return AuditCode.GPC_OPT_OUT_RECORDED
    if decision == Decision.EXPIRED:
        return AuditCode.CONSENT_EXPIRED
    if decision in (Decision.WITHDRAWN, Decision.OPTED_OUT, Decision.OBJECTED):
        return AuditCode.CONSENT_WITHDRAWN
    return AuditCode.CONSENT_RECORDED


def audit_payload(*, event: ConsentEvent) -> dict:
    return {
        "purpose": event.purpose,
        "source": event.source,
        "decision": event.decision,
        "method": event.method,
        "jurisdiction": event.jurisdiction,
        "scope": event.scope,
        "lawful_basis": event.lawful_basis,
    }


def loss_reason(*, decision: str) -> str:
    if decision == Decision.OBJECTED:
        return "objection"
    if decision == Decision.EXPIRED:
        return "consent_expired"
    return "consent_withdrawn"
