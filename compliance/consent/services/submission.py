"""One submission of a collecting system: decisions, a raw TCF signal and/or a ``Sec-GPC: 1``
opt-out about one person, recorded together (``POST /api/v1/consents/``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from compliance.audit.services.append import Actor, audit_collected_transaction
from compliance.consent.models import ConsentEvent
from compliance.consent.selectors.subjects import subject_survivor
from compliance.consent.services.record import (
    DecisionInput,
    Prepared,
    consent_prepare,
    consent_record_prepared,
    jurisdiction_normalize,
)
from compliance.consent.services.signals import (
    consent_record_gpc_prepared,
    gpc_binding,
    gpc_prepare,
    tcf_prepare,
)
from compliance.consent.services.stitching import subject_resolve_located, subjects_locate
from compliance.errors import InputError
from compliance.models import Subject
from compliance.ops.metrics import consent_rejections_counted
from compliance.regions import region_alias
from compliance.services.subjects import subject_resolve

NOTHING_SENT = "send decisions, a signal, or the Sec-GPC: 1 header"


@dataclass(frozen=True)
class Submitted:
    """What a submission did. ``recorded`` is false when only a non-binding GPC came: nothing
    was written and ``subject`` is the person if already known (never created)."""

    subject: Subject | None
    recorded: bool
    events: list[ConsentEvent] = field(default_factory=list)
    #: TCF validation issues (empty: valid); ``None`` without a signal
    issues: list | None = None
    gpc_received: bool = False
    gpc_binding: bool = False
    gpc_recorded: int = 0


@dataclass(frozen=True)
class Submission:
    identifiers: Sequence[tuple[str, str]]
    source: str
    jurisdiction: str | None = None
    decisions: Sequence[DecisionInput] = ()
    method: str = "api"
    captured_at: datetime | None = None
    notice_version_id: int | None = None
    collection_point: str = ""
    tc_string: str | None = None
    gpc_received: bool = False


@consent_rejections_counted
def consent_submit(*, submission: Submission, actor: Actor) -> Submitted:
    """Validate every part first (nothing is written on bad input), then resolve or create the
    subject and record the parts in one transaction of its region. ``InputError`` (field
    ``decisions``) when nothing was sent. Every refusal is counted (``/metrics``)."""
    s = submission
    jurisdiction = jurisdiction_normalize(jurisdiction=s.jurisdiction)
    prepared, issues = _prepare(submission=s)
    gpc = gpc_prepare(source=s.source, jurisdiction=s.jurisdiction) if s.gpc_received else None
    if not prepared and not s.gpc_received:
        raise InputError(NOTHING_SENT, field="decisions")
    if not prepared and gpc is None:
        # GPC is not binding here: nothing to record, nothing created
        return Submitted(
            subject=_existing(identifiers=s.identifiers), recorded=False, gpc_received=True
        )
    located = subjects_locate(identifiers=s.identifiers, jurisdiction=jurisdiction or None)
    events: list[ConsentEvent] = []
    gpc_events: list[ConsentEvent] = []
    alias = region_alias(region=located.region)
    # the subject's rows (if new) and the decisions: one transaction, ONE audit append, which
    # ends the transaction
    with audit_collected_transaction(using=alias):
        # read with its row lock: the writes below need not lock it again
        subject = subject_resolve_located(located=located, actor=actor, for_update=True)
        for item in prepared:
            events += consent_record_prepared(
                subject=subject, prepared=item, actor=actor, locked=True
            )
        if gpc is not None:
            gpc_events = consent_record_gpc_prepared(
                subject=subject, prepared=gpc, actor=actor, locked=True
            )
    return Submitted(
        subject=subject,
        recorded=True,
        events=events + gpc_events,
        issues=issues,
        gpc_received=s.gpc_received,
        gpc_binding=gpc_binding(jurisdiction=jurisdiction),
        gpc_recorded=len(gpc_events),
    )


def _prepare(*, submission: Submission) -> tuple[list[Prepared], list | None]:
    """The decisions and the TCF signal, validated and prepared (nothing written)."""
    s = submission
    prepared: list[Prepared] = []
    if s.decisions:
        prepared.append(
            consent_prepare(
                decisions=s.decisions,
                source=s.source,
                jurisdiction=s.jurisdiction,
                method=s.method,
                captured_at=s.captured_at,
                notice_version_id=s.notice_version_id,
                collection_point=s.collection_point,
            )
        )
    issues = None
    if s.tc_string is not None:
        tcf, issues = tcf_prepare(
            tc_string=s.tc_string,
            source=s.source,
            jurisdiction=s.jurisdiction,
            captured_at=s.captured_at,
            collection_point=s.collection_point,
        )
        prepared.append(tcf)
    return prepared, issues


def _existing(*, identifiers: Sequence[tuple[str, str]]) -> Subject | None:
    """The known person (its survivor) behind the first identifier that has one; none created."""
    for identifier_type, value in identifiers:
        subject = subject_resolve(
            identifier_type=identifier_type,
            value=value,
            jurisdiction=None,
            actor=Actor.system("lookup"),
            create=False,
        )
        if subject is not None:
            return subject_survivor(subject=subject)
    return None
