"""Every rule of ``can_process`` / ``can_process_bulk``."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from compliance.consent.models import ConsentEvent, Purpose
from compliance.consent.selectors.evaluation import can_process, can_process_bulk
from tests.factories import ConsentFactory, SubjectFactory

pytestmark = pytest.mark.django_db(databases="__all__")


def test_no_record_fails_closed():
    subject = SubjectFactory(jurisdiction="FR")
    decision = can_process(subject=subject, purpose="measurement", jurisdiction="FR")
    assert decision.allowed is False
    assert decision.reason == "no_record"
    assert decision.event_ids == ()


def test_grant_allows_with_consent_basis_and_deciding_event():
    subject = SubjectFactory(jurisdiction="FR")
    event = ConsentFactory(subject=subject, purpose="measurement", decision="granted")
    decision = can_process(subject=subject, purpose="measurement", jurisdiction="FR")
    assert (decision.allowed, decision.basis, decision.reason) == (True, "consent", "granted")
    assert decision.event_ids == (event.pk,)


def test_unknown_purpose_is_not_allowed():
    subject = SubjectFactory(jurisdiction="FR")
    decision = can_process(subject=subject, purpose="no_such_purpose")
    assert (decision.allowed, decision.reason) == (False, "unknown_purpose")


def test_expired_grant_fails_closed():
    subject = SubjectFactory(jurisdiction="FR")
    past = timezone.now() - timedelta(days=400)  # measurement expires after 395 days
    event = ConsentFactory(
        subject=subject, purpose="measurement", decision="granted", captured_at=past
    )
    decision = can_process(subject=subject, purpose="measurement", jurisdiction="FR")
    assert (decision.allowed, decision.reason, decision.event_ids) == (
        False,
        "expired",
        (event.pk,),
    )
    # ... but it was allowed while it was live
    earlier = can_process(
        subject=subject, purpose="measurement", jurisdiction="FR", at=past + timedelta(days=1)
    )
    assert earlier.allowed is True


def test_withdrawal_after_grant_is_not_allowed():
    subject = SubjectFactory(jurisdiction="FR")
    t0 = timezone.now() - timedelta(hours=2)
    ConsentFactory(subject=subject, purpose="measurement", decision="granted", captured_at=t0)
    withdrawal = ConsentFactory(
        subject=subject,
        purpose="measurement",
        decision="withdrawn",
        captured_at=t0 + timedelta(hours=1),
    )
    decision = can_process(subject=subject, purpose="measurement", jurisdiction="FR")
    assert (decision.allowed, decision.reason) == (False, "withdrawn")
    assert decision.event_ids == (withdrawal.pk,)


def test_late_arriving_older_event_does_not_override_newer_decision():
    subject = SubjectFactory(jurisdiction="FR")
    now = timezone.now()
    ConsentFactory(
        subject=subject,
        purpose="measurement",
        decision="withdrawn",
        captured_at=now - timedelta(minutes=1),
    )
    ConsentFactory(
        subject=subject,
        purpose="measurement",
        decision="granted",
        captured_at=now - timedelta(hours=5),
    )
    assert can_process(subject=subject, purpose="measurement").allowed is False


def test_invalid_signal_fails_closed_with_reason():
    subject = SubjectFactory(jurisdiction="FR")
    ConsentFactory(
        subject=subject,
        purpose="measurement",
        decision="granted",
        captured_at=timezone.now() - timedelta(hours=1),
    )
    ConsentFactory(
        subject=subject,
        purpose="measurement",
        decision="invalid_signal",
        method="tcf_string",
        raw_signal="x",
    )
    decision = can_process(subject=subject, purpose="measurement", jurisdiction="FR")
    assert (decision.allowed, decision.reason) == (False, "unreadable_signal")


def test_source_scoped_grant_beats_global_denial_for_that_source_only():
    subject = SubjectFactory(jurisdiction="FR")
    t0 = timezone.now() - timedelta(hours=2)
    ConsentFactory(
        subject=subject, purpose="email_marketing", decision="denied", source="web", captured_at=t0
    )
    grant = ConsentFactory(
        subject=subject,
        purpose="email_marketing",
        decision="granted",
        source="crm",
        captured_at=t0 + timedelta(hours=1),
    )
    at_crm = can_process(subject=subject, purpose="email_marketing", source="crm")
    assert at_crm.allowed is True and at_crm.event_ids == (grant.pk,)
    assert can_process(subject=subject, purpose="email_marketing", source="email").allowed is False
    assert can_process(subject=subject, purpose="email_marketing").allowed is False


def test_later_global_withdrawal_beats_source_grant():
    subject = SubjectFactory(jurisdiction="FR")
    t0 = timezone.now() - timedelta(hours=2)
    ConsentFactory(
        subject=subject, purpose="email_marketing", decision="granted", source="crm", captured_at=t0
    )
    withdrawal = ConsentFactory(
        subject=subject,
        purpose="email_marketing",
        decision="withdrawn",
        source="web",
        captured_at=t0 + timedelta(hours=1),
    )
    decision = can_process(subject=subject, purpose="email_marketing", source="crm")
    assert (decision.allowed, decision.reason) == (False, "withdrawn")
    assert decision.event_ids == (withdrawal.pk,)


def test_source_denial_not_overridden_by_later_global_grant():
    subject = SubjectFactory(jurisdiction="FR")
    t0 = timezone.now() - timedelta(hours=2)
    ConsentFactory(
        subject=subject, purpose="email_marketing", decision="denied", source="crm", captured_at=t0
    )
    ConsentFactory(
        subject=subject,
        purpose="email_marketing",
        decision="granted",
        source="web",
        captured_at=t0 + timedelta(hours=1),
    )
    assert can_process(subject=subject, purpose="email_marketing", source="crm").allowed is False
    assert can_process(subject=subject, purpose="email_marketing", source="web").allowed is True


def test_legitimate_interests_where_consent_not_required_allowed_unless_objected():
    subject = SubjectFactory(jurisdiction="JP")
    decision = can_process(subject=subject, purpose="measurement", jurisdiction="JP")
    assert (decision.allowed, decision.basis, decision.reason) == (
        True,
        "legitimate_interests",
        "no_objection",
    )
    ConsentFactory(subject=subject, purpose="measurement", decision="objected", jurisdiction="JP")
    decision = can_process(subject=subject, purpose="measurement", jurisdiction="JP")
    assert (decision.allowed, decision.reason) == (False, "objected")
    # the same purpose needs consent in the EU
    assert can_process(subject=subject, purpose="measurement", jurisdiction="DE").allowed is False


def test_us_opt_out_model_allowed_until_opted_out():
    subject = SubjectFactory(jurisdiction="US-CA")
    decision = can_process(subject=subject, purpose="sale_sharing", jurisdiction="US-CA")
    assert (decision.allowed, decision.basis, decision.reason) == (
        True,
        "us_opt_out",
        "not_opted_out",
    )
    ConsentFactory(
        subject=subject, purpose="sale_sharing", decision="opted_out", jurisdiction="US-CA"
    )
    decision = can_process(subject=subject, purpose="sale_sharing", jurisdiction="US-CA")
    assert (decision.allowed, decision.reason) == (False, "opted_out")


def test_us_opt_out_does_not_apply_outside_us_and_unknown_jurisdiction_fails_closed():
    subject = SubjectFactory(jurisdiction="BR")
    assert can_process(subject=subject, purpose="sale_sharing", jurisdiction="BR").allowed is False
    assert can_process(subject=subject, purpose="measurement").reason == "no_record"


def test_jurisdiction_defaults_to_latest_record():
    subject = SubjectFactory(jurisdiction="US-CA")
    ConsentFactory(subject=subject, purpose="measurement", decision="denied", jurisdiction="US-CA")
    # consent not required in US-CA, but a denial blocks legitimate interests too
    assert can_process(subject=subject, purpose="measurement").reason == "denied"


def test_contract_basis_allowed_whatever_recorded():
    Purpose.objects.create(
        key="order_emails", name="Order e-mails", lawful_bases=["contract"], consent_required_in=[]
    )
    subject = SubjectFactory(jurisdiction="FR")
    decision = can_process(subject=subject, purpose="order_emails", jurisdiction="FR")
    assert (decision.allowed, decision.basis) == (True, "contract")


def test_inactive_purpose_is_unknown():
    purpose = Purpose.objects.get(key="measurement")
    purpose.is_active = False
    purpose.save()  # as the admin and the services do (the cached configuration sees it)
    subject = SubjectFactory(jurisdiction="FR")
    assert can_process(subject=subject, purpose="measurement").reason == "unknown_purpose"


def test_bulk_uses_constant_number_of_queries():
    subjects = [SubjectFactory(jurisdiction="FR") for _ in range(3)]
    for s in subjects[:2]:
        ConsentFactory(subject=s, purpose="measurement", decision="granted")
    ConsentFactory(subject=subjects[0], purpose="storage", decision="denied")

    def run(ids):
        with (
            CaptureQueriesContext(connections["eu"]) as eu,
            CaptureQueriesContext(connections["default"]) as default,
        ):
            result = can_process_bulk(
                region="eu", subject_ids=ids, purposes=["measurement", "storage"], source="crm"
            )
        return result, len(eu) + len(default)

    ids = [s.pk for s in subjects]
    few, few_queries = run(ids[:1])
    many, many_queries = run(ids + [uuid.uuid4() for _ in range(50)])
    # one query for the purposes, one for merged subjects, one for the state (on PostgreSQL the
    # last two run on a raw server-binding cursor that Django does not log)
    assert few_queries == many_queries <= 3
    assert many[(ids[0], "measurement")].allowed is True
    assert many[(ids[0], "storage")].reason == "denied"
    assert many[(ids[2], "measurement")].reason == "no_record"
    assert len(many) == 53 * 2


def test_bulk_past_at_reads_history():
    subject = SubjectFactory(jurisdiction="FR")
    t0 = timezone.now() - timedelta(hours=3)
    ConsentFactory(subject=subject, purpose="measurement", decision="granted", captured_at=t0)
    ConsentFactory(
        subject=subject,
        purpose="measurement",
        decision="withdrawn",
        captured_at=t0 + timedelta(hours=2),
    )
    then = can_process_bulk(
        region="eu", subject_ids=[subject.pk], purposes=["measurement"], at=t0 + timedelta(hours=1)
    )
    assert then[(subject.pk, "measurement")].allowed is True
    assert ConsentEvent.objects.using("eu").filter(subject_id=subject.pk).count() == 2


@pytest.mark.parametrize("source", [None, "web", "shop"])
def test_evaluation_from_state_rows_already_read_is_the_evaluation_that_reads_them(source):
    from compliance.consent.models import EventSource
    from compliance.consent.selectors.subjects import consent_evaluation, consent_state_rows

    EventSource.objects.create(key="shop", name="Shop", channel="web", consent_scope="source")
    subject = SubjectFactory(jurisdiction="FR")
    other = SubjectFactory(jurisdiction="FR")  # its rows must not count
    earlier = timezone.now() - timedelta(hours=2)
    ConsentFactory(subject=subject, purpose="measurement", decision="granted", captured_at=earlier)
    ConsentFactory(subject=subject, purpose="measurement", decision="withdrawn", source="shop")
    ConsentFactory(subject=subject, purpose="storage", decision="denied", source="shop")
    ConsentFactory(subject=subject, purpose="email_marketing", decision="granted")
    ConsentFactory(subject=other, purpose="storage", decision="granted")
    states = consent_state_rows(subject=subject)
    assert len(states) == 4
    with CaptureQueriesContext(connections["eu"]) as queries:
        given = consent_evaluation(subject=subject, source=source, jurisdiction="FR", states=states)
    assert not [q for q in queries.captured_queries if "consent_consentstate" in q["sql"]]
    read = consent_evaluation(subject=subject, source=source, jurisdiction="FR")
    assert given == read
    assert given["measurement"].allowed is (source != "shop")
