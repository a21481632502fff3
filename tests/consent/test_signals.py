"""TCF strings and GPC headers as consent events; Consent Mode v2 derivation."""

from __future__ import annotations

import pytest

from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditEvent
from compliance.consent.models import ConsentEvent
from compliance.consent.selectors.evaluation import can_process
from compliance.consent.selectors.subjects import consent_mode
from compliance.consent.services.record import ConsentInputError
from compliance.consent.services.signals import consent_record_gpc, consent_record_tcf
from compliance.consent.tcf import DECODER_VERSION
from tests.consent.conftest import ACTOR
from tests.consent.test_tcf import VALID, core, disclosed
from tests.factories import ConsentFactory, SubjectFactory

pytestmark = pytest.mark.django_db(databases="__all__")
INVALID = f"{core(policy=2).encode()}.{disclosed([2], 2)}"


def test_tcf_string_maps_purposes_and_keeps_raw_signal():
    subject = SubjectFactory(jurisdiction="DE")
    events = consent_record_tcf(
        subject=subject, tc_string=VALID, source="web", actor=ACTOR, jurisdiction="DE"
    )
    decisions = {e.purpose: e.decision for e in events}
    # VALID consents to TCF purposes 1, 2, 3, 4, 7
    assert decisions == {
        "storage": "granted",
        "ads_personalisation": "granted",
        "audience_segmentation": "denied",
        "content_personalisation": "denied",
        "measurement": "denied",  # needs 7 and 8
    }
    assert {(e.method, e.raw_signal, e.decoder_version) for e in events} == {
        ("tcf_string", VALID, DECODER_VERSION)
    }
    assert AuditEvent.objects.using("eu").filter(code=AuditCode.TCF_SIGNAL_RECORDED).count() == 5
    assert can_process(subject=subject, purpose="storage").allowed is True
    assert can_process(subject=subject, purpose="measurement").allowed is False


def test_invalid_tcf_string_is_never_a_grant_and_fails_closed():
    subject = SubjectFactory(jurisdiction="DE")
    ConsentFactory(subject=subject, purpose="storage", decision="granted", jurisdiction="DE")
    events = consent_record_tcf(
        subject=subject, tc_string=INVALID, source="web", actor=ACTOR, jurisdiction="DE"
    )
    assert {e.decision for e in events} == {"invalid_signal"}
    decision = can_process(subject=subject, purpose="storage")
    assert (decision.allowed, decision.reason) == (False, "unreadable_signal")


def test_undecodable_tcf_string_writes_nothing():
    subject = SubjectFactory(jurisdiction="DE")
    with pytest.raises(ConsentInputError) as info:
        consent_record_tcf(subject=subject, tc_string="%%%not-tcf", source="web", actor=ACTOR)
    assert info.value.field == "signal.value"
    assert not ConsentEvent.objects.using("eu").exists()


def test_gpc_binding_records_opt_out_for_gpc_purposes(hook_calls):
    subject = SubjectFactory(jurisdiction="US-CA")
    assert can_process(subject=subject, purpose="sale_sharing", jurisdiction="US-CA").allowed
    events = consent_record_gpc(subject=subject, source="web", actor=ACTOR, jurisdiction="US-CA")
    assert {(e.purpose, e.decision, e.lawful_basis, e.method) for e in events} == {
        ("sale_sharing", "opted_out", "us_opt_out", "gpc_header"),
        ("ads_personalisation", "opted_out", "us_opt_out", "gpc_header"),
    }
    assert AuditEvent.objects.using("us").filter(code=AuditCode.GPC_OPT_OUT_RECORDED).count() == 2
    assert can_process(subject=subject, purpose="sale_sharing").reason == "opted_out"
    assert sorted(hook_calls[0]["purposes"]) == ["ads_personalisation", "sale_sharing"]
    # a repeated header adds nothing
    assert (
        consent_record_gpc(subject=subject, source="web", actor=ACTOR, jurisdiction="US-CA") == []
    )


def test_gpc_not_binding_records_nothing(settings):
    subject = SubjectFactory(jurisdiction="US-NY")
    assert (
        consent_record_gpc(subject=subject, source="web", actor=ACTOR, jurisdiction="US-NY") == []
    )
    settings.COMPLIANCE_GPC_BINDING_JURISDICTIONS = ["US-NY"]
    assert (
        len(consent_record_gpc(subject=subject, source="web", actor=ACTOR, jurisdiction="US-NY"))
        == 2
    )


def test_consent_mode_derived_from_state():
    subject = SubjectFactory(jurisdiction="FR")
    mode = consent_mode(subject=subject, jurisdiction="FR")
    assert mode == {
        "ad_storage": "denied",
        "ad_user_data": "denied",
        "ad_personalization": "denied",
        "analytics_storage": "denied",
        "functionality_storage": "denied",
        "personalization_storage": "denied",
        "security_storage": "granted",
    }
    ConsentFactory(subject=subject, purpose="storage", decision="granted")
    ConsentFactory(subject=subject, purpose="measurement", decision="granted")
    mode = consent_mode(subject=subject, jurisdiction="FR")
    assert mode["analytics_storage"] == "granted"
    assert mode["functionality_storage"] == "granted"
    assert mode["ad_storage"] == "denied"  # also needs ads_personalisation
