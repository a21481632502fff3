"""The test factories make what production makes: regions, encrypted identities, audit."""

from __future__ import annotations

import pytest

from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditEvent
from compliance.consent.models import ConsentState
from compliance.dsar.models import PrivacyRequest
from compliance.identifiers import identifier_normalize
from compliance.models import Identity, Subject, SubjectDirectory
from compliance.services.subjects import identifier_blind_index, identity_value
from segments.models import SegmentMembership
from tests.factories import (
    ConsentFactory,
    PrivacyRequestFactory,
    SegmentFactory,
    SegmentStayFactory,
    StaffFactory,
    SubjectFactory,
    SubjectRowFactory,
)

pytestmark = pytest.mark.django_db(databases="__all__")


def _codes(alias: str) -> list[int]:
    return list(AuditEvent.objects.using(alias).order_by("seq").values_list("code", flat=True))


def _index(kind: str, value: str) -> str:
    return identifier_blind_index(
        identifier=identifier_normalize(identifier_type=kind, value=value)
    )


@pytest.mark.parametrize(("jurisdiction", "alias"), [("DE", "eu"), ("US-CA", "us")])
def test_subject_lives_in_its_region_with_an_encrypted_identity_and_audit(jurisdiction, alias):
    person = SubjectFactory(jurisdiction=jurisdiction, email="ana@example.org")
    other = "eu" if alias == "us" else "us"
    assert person.region == alias and person._state.db == alias
    assert not Subject.objects.using(other).filter(pk=person.pk).exists()
    entry = SubjectDirectory.objects.get(blind_index=_index("email", "ana@example.org"))
    assert (entry.region, entry.subject_id) == (alias, person.pk)
    identity = Identity.objects.using(alias).get(subject=person)
    assert b"ana@example.org" not in bytes(identity.value_encrypted)
    assert identity_value(identity=identity, subject=person) == "ana@example.org"
    assert _codes(alias) == [AuditCode.SUBJECT_KEY_CREATED, AuditCode.IDENTITY_LINKED]


def test_subject_extra_identifiers_consents_and_merge():
    survivor = SubjectFactory(consented=True)
    merged = SubjectFactory(identifiers={"crm_id": "C-7"}, merged_into=survivor)
    assert merged.merged_into == survivor.pk
    assert Identity.objects.using("eu").filter(subject=survivor).count() == 3  # moved over
    held = ConsentState.objects.using("eu").filter(subject_id=survivor.pk, decision="granted")
    assert sorted(held.values_list("purpose", flat=True)) == [
        "audience_segmentation",
        "measurement",
    ]
    assert AuditCode.SUBJECTS_MERGED in _codes("eu")
    assert (
        SubjectFactory(email="again@example.org").pk == SubjectFactory(email="again@example.org").pk
    )


def test_consent_goes_through_the_service_and_is_audited():
    event = ConsentFactory(purpose="storage", decision="withdrawn", jurisdiction="DE")
    assert event._state.db == "eu" and event.decision == "withdrawn"
    assert _codes("eu")[-1] == AuditCode.CONSENT_WITHDRAWN


@pytest.mark.parametrize(
    ("type", "status"),
    [
        ("erasure", "awaiting_approval"),
        ("erasure", "processing"),
        ("access", "processing"),
        ("erasure", "rejected"),
        ("erasure", "cancelled"),
        ("access", "completed"),
        ("erasure", "failed"),
    ],
)
def test_request_reaches_each_status_through_audited_transitions(type, status):
    request = PrivacyRequestFactory(type=type, status=status, jurisdiction="US-CA")
    assert request._state.db == "us" and request.status == status and request.subject_id
    changes = AuditEvent.objects.using("us").filter(
        object_id=str(request.pk), code=AuditCode.REQUEST_STATUS_CHANGED
    )
    assert list(changes.order_by("seq").values_list("payload__to", flat=True))[-1] == status


def test_request_for_nobody_completes_at_once():
    request = PrivacyRequestFactory(subject=None, overdue=True)
    assert request.status == "completed" and request.result_counts["no_data_held"]
    assert PrivacyRequest.objects.using("eu").get(pk=request.pk).due_at < request.received_at


def test_segment_steps_and_stay_rows():
    officer = StaffFactory()
    draft = SegmentFactory(user=officer, status="draft", layers=["firmographic"])
    active = SegmentFactory(user=officer)
    assert (draft.status, active.status, active.owner) == ("draft", "active", officer)
    assert draft.required_purposes == ["audience_segmentation"]
    person = SubjectRowFactory()
    stay = SegmentStayFactory(subject_id=person.pk, segment_key=active.key)
    assert SegmentMembership.objects.using("eu").get(pk=stay.pk).exited_at is None
    with pytest.raises(TypeError):
        SubjectFactory.build()
