"""Raw signals -> consent events: IAB TCF strings and the ``Sec-GPC`` header.

TCF: each of our purposes mapped to TCF purposes (``Purpose.tcf_purposes``) and special
features (``tcf_special_features``) is ``granted`` when every mapped TCF purpose has consent
(the Publisher TC segment's purposes when present - we are the publisher -, else the core
``purposes_consent``) and every mapped special feature is opted in, else ``denied``. The string
is kept verbatim with ``DECODER_VERSION``; method ``tcf_string``. A string that decodes but
fails TCF 2.2/2.3 validation is recorded as ``invalid_signal`` for every mapped purpose: never
a grant, and evaluation fails closed on it. A string that cannot be decoded raises
``ConsentInputError`` (field ``signal.value``) and nothing is written.

GPC: ``Sec-GPC: 1`` (exactly) records ``opted_out`` (basis ``us_opt_out``, method
``gpc_header``) for purposes with ``gpc_effect`` when the jurisdiction is listed in
``COMPLIANCE_GPC_BINDING_JURISDICTIONS``; elsewhere nothing is recorded. A purpose already
opted out by GPC is not recorded again.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from compliance.audit.services.append import Actor
from compliance.conf import compliance_settings
from compliance.consent.models import (
    ConsentEvent,
    ConsentState,
    Decision,
    Method,
    Purpose,
    Scope,
)
from compliance.consent.selectors.config import jurisdiction_matches
from compliance.consent.services.record import (
    ConsentInputError,
    DecisionInput,
    Prepared,
    consent_prepare,
    consent_record_prepared,
    jurisdiction_normalize,
)
from compliance.consent.tcf import (
    DECODER_VERSION,
    TCFDecodeError,
    TCString,
    tcf_decode,
    tcf_validate,
)
from compliance.models import Subject
from compliance.regions import region_alias

GPC_RAW_SIGNAL = "Sec-GPC: 1"


def gpc_header_set(*, value: str | None) -> bool:
    """True only for the exact header value ``1`` (the spec allows nothing else)."""
    return value == "1"


def tcf_decisions(*, tc: TCString, valid: bool) -> list[DecisionInput]:
    """Our purposes' decisions from a decoded string (see module docstring)."""
    consented = set(tc.publisher_purposes_consent if tc.has_publisher_tc_segment else ())
    if not tc.has_publisher_tc_segment:
        consented = set(tc.purposes_consent)
    features = set(tc.special_feature_opt_ins)
    out = []
    for purpose in Purpose.objects.filter(is_active=True).order_by("key"):
        if not purpose.tcf_purposes and not purpose.tcf_special_features:
            continue
        if not valid:
            decision = Decision.INVALID_SIGNAL
        elif (
            set(purpose.tcf_purposes) <= consented and set(purpose.tcf_special_features) <= features
        ):
            decision = Decision.GRANTED
        else:
            decision = Decision.DENIED
        out.append(DecisionInput(purpose=purpose.key, decision=decision, lawful_basis="consent"))
    return out


def tcf_prepare(
    *,
    tc_string: str,
    source: str,
    jurisdiction: str | None,
    captured_at: datetime | None = None,
    collection_point: str = "",
) -> tuple[Prepared, list]:
    """Decode, validate and map a TC string; returns the prepared input and validation issues."""
    if not isinstance(tc_string, str) or not tc_string.strip():
        raise ConsentInputError("TC string is empty", field="signal.value")
    try:
        tc = tcf_decode(tc_string=tc_string)
    except TCFDecodeError as exc:
        raise ConsentInputError(f"undecodable TC string: {exc}", field="signal.value") from exc
    issues = tcf_validate(tc=tc)
    decisions = tcf_decisions(tc=tc, valid=not issues)
    if not decisions:
        raise ConsentInputError("no purpose is mapped to TCF purposes", field="signal.value")
    prepared = consent_prepare(
        decisions=decisions,
        source=source,
        method=Method.TCF_STRING,
        jurisdiction=jurisdiction,
        captured_at=captured_at,
        collection_point=collection_point,
        raw_signal=tc_string,
        decoder_version=DECODER_VERSION,
    )
    return prepared, issues


def consent_record_tcf(
    *,
    subject: Subject,
    tc_string: str,
    source: str,
    actor: Actor,
    jurisdiction: str | None = None,
    captured_at: datetime | None = None,
    collection_point: str = "",
) -> list[ConsentEvent]:
    """Record a TC string as consent events (one transaction; audited TCF_SIGNAL_RECORDED)."""
    prepared, _ = tcf_prepare(
        tc_string=tc_string,
        source=source,
        jurisdiction=jurisdiction,
        captured_at=captured_at,
        collection_point=collection_point,
    )
    return consent_record_prepared(subject=subject, prepared=prepared, actor=actor)


def gpc_binding(*, jurisdiction: str | None) -> bool:
    if not jurisdiction:
        return False
    return jurisdiction_matches(
        jurisdiction=jurisdiction, codes=compliance_settings.GPC_BINDING_JURISDICTIONS
    )


def gpc_prepare(*, source: str, jurisdiction: str | None) -> Prepared | None:
    """The opt-outs a GPC header means here, or None where GPC is not binding."""
    jurisdiction = jurisdiction_normalize(jurisdiction=jurisdiction)
    if not gpc_binding(jurisdiction=jurisdiction):
        return None
    keys = list(
        Purpose.objects.filter(is_active=True, gpc_effect=True)
        .order_by("key")
        .values_list("key", flat=True)
    )
    if not keys:
        return None
    return consent_prepare(
        decisions=[DecisionInput(purpose=k, decision=Decision.OPTED_OUT) for k in keys],
        source=source,
        method=Method.GPC_HEADER,
        jurisdiction=jurisdiction,
        raw_signal=GPC_RAW_SIGNAL,
    )


def consent_record_gpc_prepared(
    *, subject: Subject, prepared: Prepared, actor: Actor, locked: bool = False
) -> list[ConsentEvent]:
    """Record GPC opt-outs, skipping purposes whose global state is already a GPC opt-out
    (``locked`` as for ``consent_record_prepared``)."""
    alias = region_alias(region=subject.region)
    subject_id = subject.merged_into or subject.pk
    already = set(
        ConsentState.objects.using(alias)
        .filter(
            subject_id=subject_id,
            source=prepared.source.key if prepared.source.consent_scope == Scope.SOURCE else "",
            decision=Decision.OPTED_OUT,
            purpose__in=[i.purpose for i in prepared.items],
        )
        .values_list("purpose", flat=True)
    )
    items = tuple(i for i in prepared.items if i.purpose not in already)
    if not items:
        return []
    return consent_record_prepared(
        subject=subject, prepared=replace(prepared, items=items), actor=actor, locked=locked
    )


def consent_record_gpc(
    *, subject: Subject, source: str, actor: Actor, jurisdiction: str | None
) -> list[ConsentEvent]:
    """Apply ``Sec-GPC: 1`` for ``subject``; returns the events written (maybe none)."""
    prepared = gpc_prepare(source=source, jurisdiction=jurisdiction)
    if prepared is None:
        return []
    return consent_record_gpc_prepared(subject=subject, prepared=prepared, actor=actor)
