"""Stitching identifiers to one subject and merging subjects."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditEvent
from compliance.consent.models import ConsentEvent
from compliance.consent.selectors.evaluation import can_process, can_process_bulk
from compliance.consent.services.stitching import (
    CrossRegionMergeError,
    subject_resolve_many,
    subjects_merge,
)
from compliance.models import Identity, Subject, SubjectDirectory
from compliance.services.subjects import identity_value, subject_resolve
from tests.consent.conftest import ACTOR
from tests.factories import ConsentFactory, SubjectFactory

pytestmark = pytest.mark.django_db(databases="__all__")


def test_two_identifiers_in_one_call_link_to_one_subject():
    subject = subject_resolve_many(
        identifiers=[("anonymous_id", "anon-123"), ("email", "Ana@Example.org")],
        jurisdiction="FR",
        actor=ACTOR,
    )
    same = subject_resolve(
        identifier_type="email", value="ana@example.org", jurisdiction="FR", actor=ACTOR
    )
    assert same.pk == subject.pk
    assert Identity.objects.using("eu").filter(subject_id=subject.pk).count() == 2
    assert SubjectDirectory.objects.filter(subject_id=subject.pk).count() == 2
    assert AuditEvent.objects.using("eu").filter(code=AuditCode.IDENTITY_LINKED).count() == 2


def test_known_subjects_are_merged_with_identities_reencrypted():
    anon = subject_resolve(
        identifier_type="anonymous_id", value="anon-9", jurisdiction="FR", actor=ACTOR
    )
    known = SubjectFactory(jurisdiction="FR", email="bo@example.org")
    survivor = subject_resolve_many(
        identifiers=[("anonymous_id", "anon-9"), ("email", "bo@example.org")],
        jurisdiction="FR",
        actor=ACTOR,
    )
    assert survivor.pk == anon.pk  # the oldest survives
    merged = Subject.objects.using("eu").get(pk=known.pk)
    assert merged.merged_into == anon.pk
    identities = Identity.objects.using("eu").filter(subject_id=anon.pk)
    assert {identity_value(identity=i, subject=survivor) for i in identities} == {
        "anon-9",
        "bo@example.org",
    }
    assert set(SubjectDirectory.objects.values_list("subject_id", flat=True)) == {anon.pk}
    audit = AuditEvent.objects.using("eu").get(code=AuditCode.SUBJECTS_MERGED)
    assert audit.subject_token == survivor.audit_token
    assert audit.payload["merged_subject_token"] == merged.audit_token
    assert audit.payload["identities_moved"] == 1


def test_merge_copies_consent_and_never_turns_a_withdrawal_into_a_grant():
    survivor = SubjectFactory(jurisdiction="FR")
    other = SubjectFactory(jurisdiction="FR")
    t0 = timezone.now() - timedelta(hours=5)
    ConsentFactory(subject=survivor, purpose="measurement", decision="withdrawn", captured_at=t0)
    ConsentFactory(
        subject=other,
        purpose="measurement",
        decision="granted",
        captured_at=t0 + timedelta(hours=1),
    )  # later grant
    ConsentFactory(subject=other, purpose="storage", decision="denied", captured_at=t0)
    ConsentFactory(
        subject=survivor, purpose="storage", decision="granted", captured_at=t0 + timedelta(hours=2)
    )
    ConsentFactory(
        subject=other, purpose="content_personalisation", decision="granted", captured_at=t0
    )
    result = subjects_merge(survivor=survivor, merged=other, actor=ACTOR)
    assert result.events_copied == 3
    assert result.negatives_restated == 2
    assert can_process(subject=survivor, purpose="measurement").reason == "withdrawn"
    assert can_process(subject=survivor, purpose="storage").reason == "denied"
    assert can_process(subject=survivor, purpose="content_personalisation").allowed is True
    # the merged subject evaluates as its survivor
    other.refresh_from_db()
    assert can_process(subject=other, purpose="measurement").allowed is False
    copies = ConsentEvent.objects.using("eu").filter(subject_id=survivor.pk, method="merge")
    assert copies.count() == 5 and all(c.copied_from for c in copies)
    # ... in bulk too: the merged id is answered with its survivor's consent, keyed as asked
    # (its own records still say "granted" for measurement)
    bulk = can_process_bulk(
        region="eu",
        subject_ids=[other.pk, survivor.pk],
        purposes=["measurement", "content_personalisation"],
    )
    assert bulk[(other.pk, "measurement")].reason == "withdrawn"
    assert bulk[(other.pk, "measurement")] == bulk[(survivor.pk, "measurement")]
    assert bulk[(other.pk, "content_personalisation")].allowed is True
    # the originals stay on the merged subject
    assert ConsentEvent.objects.using("eu").filter(subject_id=other.pk).count() == 3


def test_merge_hook_when_survivor_loses_basis(hook_calls):
    survivor = SubjectFactory(jurisdiction="FR")
    other = SubjectFactory(jurisdiction="FR")
    t0 = timezone.now() - timedelta(hours=5)
    ConsentFactory(subject=survivor, purpose="measurement", decision="granted", captured_at=t0)
    ConsentFactory(
        subject=other,
        purpose="measurement",
        decision="withdrawn",
        captured_at=t0 + timedelta(hours=1),
    )
    subjects_merge(survivor=survivor, merged=other, actor=ACTOR)
    assert [(c["subject_id"], c["purposes"]) for c in hook_calls] == [
        (survivor.pk, ["measurement"])
    ]


def test_cross_region_merge_is_refused_and_writes_nothing():
    eu = SubjectFactory(jurisdiction="FR", email="eu-person@example.org")
    us = SubjectFactory(jurisdiction="US-CA", email="us-person@example.org")
    before = SubjectDirectory.objects.count()
    with pytest.raises(CrossRegionMergeError):
        subject_resolve_many(
            identifiers=[("email", "eu-person@example.org"), ("email", "us-person@example.org")],
            jurisdiction="FR",
            actor=ACTOR,
        )
    with pytest.raises(CrossRegionMergeError):
        subjects_merge(survivor=eu, merged=us, actor=ACTOR)
    assert SubjectDirectory.objects.count() == before
    assert not AuditEvent.objects.using("eu").filter(code=AuditCode.SUBJECTS_MERGED).exists()
