"""Consent signals carried by events are recorded first (consent app), then evaluated."""

from __future__ import annotations

import pytest

from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditEvent
from compliance.consent.models import ConsentEvent
from compliance.consent.tcf import tcf_decode, tcf_validate
from compliance.events.models import Event
from compliance.models import SubjectDirectory
from tests.events.conftest import api_client, count, event, new_email, post
from tests.factories import SubjectFactory

pytestmark = pytest.mark.django_db(databases="__all__")

#: built with the consent tests' bit writer: TCF policy 4, service-specific, purposes with
#: consent 1, 2, 3, 4, 7, disclosed vendors segment -> storage and ads_personalisation
#: granted, measurement (7 and 8) denied
VALID_TC = "COvzTO5OvzTO5EsAHBDEB4EoAPIAAEIAAAYgADEgAFBAAAAA.IAEkiAAA"
#: a published string that decodes but fails TCF 2.2 validation (not service-specific)
INVALID_TC = "COvzTO5OvzTO5B7ABCENAPEYAIAAAIAAAIqIAAoAAoAA.QAAo.IAAo"


@pytest.fixture
def client():
    return api_client("events:write")


def test_the_vectors_are_what_the_tests_say():
    assert tcf_validate(tc=tcf_decode(tc_string=VALID_TC)) == []
    assert tcf_decode(tc_string=VALID_TC).purposes_consent == (1, 2, 3, 4, 7)
    assert tcf_validate(tc=tcf_decode(tc_string=INVALID_TC))


def test_tc_string_for_unknown_subject_is_recorded_then_grants(client):
    email = new_email()
    signal = {"tc_string": VALID_TC}
    response = post(
        client,
        [
            event(email, purpose="storage", consent_signal=signal, jurisdiction="FR"),
            event(email, purpose="measurement", consent_signal=signal, jurisdiction="FR"),
            event(email, purpose="ads_personalisation", jurisdiction="FR"),
        ],
    )

    results = response.json()["results"]
    assert [(r["status"], r["reason"]) for r in results] == [
        ("accepted", "granted"),
        ("rejected", "denied"),
        ("accepted", "granted"),
    ]
    entry = SubjectDirectory.objects.get()
    assert entry.region == "eu"
    ledger = ConsentEvent.objects.using("eu").filter(subject_id=entry.subject_id)
    # recorded once for the batch, one event per purpose mapped to TCF purposes
    assert ledger.count() == 5
    assert set(ledger.values_list("method", flat=True)) == {"tcf_string"}
    assert set(ledger.values_list("raw_signal", flat=True)) == {VALID_TC}
    storage_grant = ledger.get(purpose="storage")
    assert storage_grant.decision == "granted"
    stored = Event.objects.using("eu").get(purpose="storage")
    assert stored.consent_event_ids == [storage_grant.pk]
    codes = AuditEvent.objects.using("eu").values_list("code", flat=True)
    assert list(codes).count(AuditCode.TCF_SIGNAL_RECORDED) == 5
    assert count("us") == 0


def test_undecodable_tc_string_rejects_and_writes_nothing(client):
    email = new_email()
    response = post(
        client, [event(email, consent_signal={"tc_string": "not-a-tc-string"}, jurisdiction="FR")]
    )
    assert response.json()["results"][0]["reason"] == "unreadable_signal"
    assert SubjectDirectory.objects.count() == 0
    assert ConsentEvent.objects.using("eu").count() == 0


def test_undecodable_tc_string_of_known_subject_does_not_touch_its_consent(client):
    email = new_email()
    subject = SubjectFactory(jurisdiction="FR", email=email)
    response = post(client, [event(email, consent_signal={"tc_string": "###"})])
    assert response.json()["results"][0]["reason"] == "unreadable_signal"
    assert ConsentEvent.objects.using("eu").filter(subject_id=subject.pk).count() == 0


def test_tc_string_failing_validation_fails_closed(client):
    email = new_email()
    subject = SubjectFactory(jurisdiction="FR", email=email)
    response = post(
        client, [event(email, purpose="storage", consent_signal={"tc_string": INVALID_TC})]
    )
    assert response.json()["results"][0]["reason"] == "unreadable_signal"
    decisions = set(
        ConsentEvent.objects.using("eu")
        .filter(subject_id=subject.pk)
        .values_list("decision", flat=True)
    )
    assert decisions == {"invalid_signal"}
    assert count("eu") == 0


def test_gpc_opts_out_where_binding_before_evaluation(client):
    email = new_email()
    subject = SubjectFactory(jurisdiction="US-CA", email=email)
    response = post(
        client,
        [
            event(
                email,
                purpose="ads_personalisation",
                consent_signal={"gpc": True},
                jurisdiction="US-CA",
            ),
            event(email, purpose="ads_personalisation", jurisdiction="US-CA"),
        ],
    )
    assert [r["reason"] for r in response.json()["results"]] == ["opted_out", "opted_out"]
    opted = ConsentEvent.objects.using("us").filter(subject_id=subject.pk, decision="opted_out")
    assert set(opted.values_list("purpose", flat=True)) == {"ads_personalisation", "sale_sharing"}
    assert set(opted.values_list("method", flat=True)) == {"gpc_header"}
    assert count("us") == 0


def test_gpc_where_not_binding_records_nothing(client):
    email = new_email()
    subject = SubjectFactory(jurisdiction="FR", email=email)
    response = post(client, [event(email, consent_signal={"gpc": True}, jurisdiction="FR")])
    assert response.json()["results"][0]["reason"] == "no_record"
    assert ConsentEvent.objects.using("eu").filter(subject_id=subject.pk).count() == 0
