"""Consent-gated ingest: per-event decisions, fail-closed cases, suppression, idempotency,
encryption at rest, rejection counters and the audit trail."""

from __future__ import annotations

import dataclasses
import json

import pytest
from django.db import connections
from django.utils import timezone

from compliance.dsar.sql import directory_delete_suppressing
from compliance.events.models import Event, RejectionCount
from compliance.events.selectors.events import event_properties, rejection_totals
from compliance.identifiers import identifier_normalize
from compliance.models import Subject, SubjectDirectory, SubjectKey, Suppression
from compliance.services.subjects import identifier_blind_index, subject_data_key
from tests.events.conftest import ACTOR, api_client, batch_audits, count, event, new_email, post
from tests.factories import ConsentFactory, SubjectFactory

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def client():
    return api_client("events:write")


def test_accepted_and_rejected_per_event_with_reasons(client):
    allowed, withdrawn, never = new_email(), new_email(), new_email()
    a = SubjectFactory(jurisdiction="FR", email=allowed)
    ConsentFactory(subject=a, purpose="measurement", decision="granted")
    w = SubjectFactory(jurisdiction="FR", email=withdrawn)
    ConsentFactory(subject=w, purpose="measurement", decision="granted")
    ConsentFactory(subject=w, purpose="measurement", decision="withdrawn")
    SubjectFactory(jurisdiction="FR", email=never)

    response = post(
        client,
        [
            event(allowed, id="e-1"),
            event(withdrawn),
            event(never),
            event(allowed, purpose="ads_personalisation"),
        ],
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 3)
    results = body["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected", "rejected"]
    assert [r["reason"] for r in results] == ["granted", "withdrawn", "no_record", "no_record"]
    assert results[0]["id"] == "e-1" and results[1]["id"] is None
    stored = Event.objects.using("eu").get()
    assert results[0]["event_id"] == stored.pk
    assert stored.subject_id == a.pk and stored.source == "web" and stored.name == "page_view"
    assert stored.purpose == "measurement" and stored.client_event_id == "e-1"
    # the consent events that allowed it are kept with the event
    assert stored.consent_event_ids and all(isinstance(i, int) for i in stored.consent_event_ids)
    assert count("us") == 0


def test_batch_audit_entry_counts_only(client):
    email = new_email()
    ConsentFactory(subject=SubjectFactory(jurisdiction="DE", email=email), decision="granted")
    post(client, [event(email), event(email), event(new_email(), source="crm", jurisdiction="DE")])

    audits = batch_audits("eu")
    assert len(audits) == 2  # one per source present in the region's part of the batch
    by_source = {a["payload"]["source"]: a for a in audits}
    assert by_source["web"]["payload"] == {"source": "web", "accepted": 2, "rejected": {}}
    assert by_source["crm"]["payload"] == {
        "source": "crm",
        "accepted": 0,
        "rejected": {"no_record": 1},
    }
    assert {a["object_type"] for a in audits} == {"event_batch"}
    assert len({a["object_id"] for a in audits}) == 1  # the same batch id
    assert {a["actor_type"] for a in audits} == {"client"}
    assert "@" not in json.dumps(audits)


def test_rejection_counts_are_kept_per_source_and_reason(client):
    email = new_email()
    SubjectFactory(jurisdiction="FR", email=email)
    post(client, [event(email), event(email), event(email, source="crm")])
    post(client, [event(email)])

    assert rejection_totals(region="eu") == {("web", "no_record"): 3, ("crm", "no_record"): 1}
    row = RejectionCount.objects.using("eu").get(source="web")
    assert row.count == 3 and row.reason == "no_record"
    assert RejectionCount.objects.using("us").count() == 0


def test_unknown_subject_without_signal_is_rejected_and_nothing_created(client):
    email = new_email()
    response = post(client, [event(email, jurisdiction="FR")])

    assert response.json()["results"][0]["reason"] == "no_record"
    assert SubjectDirectory.objects.count() == 0
    assert Subject.objects.using("eu").count() == 0 and Subject.objects.using("us").count() == 0
    assert count("eu") == 0
    # still counted and audited in the jurisdiction's region
    assert batch_audits("eu")[0]["payload"]["rejected"] == {"no_record": 1}


def test_unknown_subject_without_jurisdiction_fails_closed(client):
    response = post(client, [event(new_email(), purpose="ads_personalisation")])
    assert response.json()["results"][0]["status"] == "rejected"
    assert SubjectDirectory.objects.count() == 0


def test_unknown_subject_in_opt_out_regime_is_created_and_accepted(client):
    # California: ads personalisation is allowed unless the person opted out (us_opt_out)
    email = new_email()
    response = post(client, [event(email, purpose="ads_personalisation", jurisdiction="US-CA")])

    result = response.json()["results"][0]
    assert (result["status"], result["reason"]) == ("accepted", "not_opted_out")
    entry = SubjectDirectory.objects.get()
    assert entry.region == "us"
    stored = Event.objects.using("us").get()
    assert stored.subject_id == entry.subject_id and stored.jurisdiction == "US-CA"
    assert stored.consent_event_ids == []
    assert count("eu") == 0


def test_opt_out_regime_respects_a_recorded_opt_out(client):
    email = new_email()
    subject = SubjectFactory(jurisdiction="US-CA", email=email)
    ConsentFactory(
        subject=subject, purpose="ads_personalisation", decision="opted_out", jurisdiction="US-CA"
    )
    response = post(client, [event(email, purpose="ads_personalisation", jurisdiction="US-CA")])
    assert response.json()["results"][0]["reason"] == "opted_out"
    assert count("us") == 0


def test_expired_grant_fails_closed(client):
    from datetime import timedelta

    from django.utils import timezone

    from compliance.consent.services.record import consent_record
    from tests.events.conftest import ACTOR

    email = new_email()
    subject = SubjectFactory(jurisdiction="FR", email=email)
    consent_record(
        subject=subject,
        purpose="measurement",
        decision="granted",
        source="web",
        actor=ACTOR,
        jurisdiction="FR",
        captured_at=timezone.now() - timedelta(days=800),
    )
    response = post(client, [event(email)])
    assert response.json()["results"][0]["reason"] == "expired"
    assert count("eu") == 0


def test_source_scoped_grant_does_not_allow_another_source(client):
    email = new_email()
    subject = SubjectFactory(jurisdiction="FR", email=email)
    ConsentFactory(
        subject=subject, purpose="measurement", source="crm", decision="granted"
    )  # crm decisions apply to crm only
    response = post(client, [event(email, source="crm"), event(email, source="web")])
    assert [r["status"] for r in response.json()["results"]] == ["accepted", "rejected"]


def test_suppressed_identity_is_refused(client):
    email = new_email()
    subject = SubjectFactory(jurisdiction="FR", email=email)
    ConsentFactory(subject=subject, decision="granted")
    index = identifier_blind_index(
        identifier=identifier_normalize(identifier_type="email", value=email)
    )
    # what erasure leaves behind: a suppression row in the region, its mirror in the control
    # database (written by the statement that removes the directory entry)
    Suppression.objects.using("eu").create(blind_index=index, identifier_type="email")
    directory_delete_suppressing(subject_ids=[subject.pk], at=timezone.now())

    response = post(
        client,
        [event(email), event(email.upper(), consent_signal={"gpc": True}, jurisdiction="US-CA")],
    )

    assert [r["reason"] for r in response.json()["results"]] == ["subject_suppressed"] * 2
    assert count("eu") == 0 and count("us") == 0
    assert SubjectDirectory.objects.count() == 0  # not re-created under a new id
    assert rejection_totals(region="eu") == {("web", "subject_suppressed"): 2}


def test_erased_subject_key_rejects(client):
    email = new_email()
    subject = SubjectFactory(jurisdiction="FR", email=email)
    ConsentFactory(subject=subject, decision="granted")
    SubjectKey.objects.using("eu").filter(subject_id=subject.pk).delete()
    response = post(client, [event(email)])
    assert response.json()["results"][0]["reason"] == "subject_erased"
    assert count("eu") == 0


def test_an_event_with_a_new_identifier_links_it_to_the_known_subject(client):
    email = new_email()
    subject = SubjectFactory(jurisdiction="FR", email=email)
    ConsentFactory(subject=subject, decision="granted")
    body = event(email)
    body["identifiers"].append({"type": "anonymous_id", "value": "anon-7731"})
    response = post(client, [body])
    assert response.json()["results"][0]["status"] == "accepted"
    anon = identifier_blind_index(
        identifier=identifier_normalize(identifier_type="anonymous_id", value="anon-7731")
    )
    assert SubjectDirectory.objects.get(blind_index=anon).subject_id == subject.pk
    assert Subject.objects.using("eu").count() == 1
    # the next event carrying only the anonymous id is the same person
    response = post(
        client, [{**event(email), "identifiers": [{"type": "anonymous_id", "value": "anon-7731"}]}]
    )
    assert response.json()["results"][0]["status"] == "accepted"
    assert set(Event.objects.using("eu").values_list("subject_id", flat=True)) == {subject.pk}


def test_two_known_people_in_one_event_are_merged_and_a_denial_stays_a_denial(client):
    from compliance.consent.services.record import consent_record

    first, second = new_email(), new_email()
    one, two = (
        SubjectFactory(jurisdiction="FR", email=first),
        SubjectFactory(jurisdiction="FR", email=second),
    )
    ConsentFactory(subject=one, decision="granted")
    consent_record(
        subject=two,
        purpose="measurement",
        decision="withdrawn",
        source="web",
        actor=ACTOR,
        jurisdiction="FR",
    )
    body = event(first)
    body["identifiers"].append({"type": "email", "value": second})
    response = post(client, [body])
    # one person now; the later withdrawal of the merged subject is not turned into a grant
    assert response.json()["results"][0]["status"] == "rejected"
    merged = {s.pk: s.merged_into for s in Subject.objects.using("eu").all()}
    assert sorted(merged.values(), key=str).count(None) == 1
    survivor = next(pk for pk, into in merged.items() if into is None)
    assert {e.subject_id for e in SubjectDirectory.objects.all()} == {survivor}
    assert count("eu") == 0


def test_known_people_in_two_regions_are_a_conflict(client):
    first, second = new_email(), new_email()
    SubjectFactory(jurisdiction="FR", email=first, consents=["measurement"])
    ConsentFactory(
        subject=SubjectFactory(jurisdiction="US-CA", email=second),
        jurisdiction="US-CA",
        decision="granted",
    )
    body = event(first)
    body["identifiers"].append({"type": "email", "value": second})
    response = post(client, [body])
    assert response.json()["results"][0]["reason"] == "identity_conflict"
    assert count("eu") == 0 and count("us") == 0


def test_properties_are_encrypted_at_rest(client):
    email = new_email()
    subject = SubjectFactory(jurisdiction="FR", email=email)
    ConsentFactory(subject=subject, decision="granted")
    secret = "plaintext-marker-7f3a"
    post(client, [event(email, properties={"search": secret, "n": 3})])

    with connections["eu"].cursor() as cursor:
        cursor.execute("SELECT * FROM events_event")
        raw = repr(cursor.fetchall())
    assert secret not in raw and "search" not in raw
    stored = Event.objects.using("eu").get()
    assert secret.encode() not in bytes(stored.properties_encrypted)
    key = subject_data_key(subject=subject)
    assert event_properties(event=stored, data_key=key) == {"search": secret, "n": 3}
    # bound to its subject: another subject's key cannot read it
    other = SubjectFactory(jurisdiction="FR")
    from compliance.crypto import DecryptionError

    with pytest.raises(DecryptionError):
        event_properties(event=stored, data_key=subject_data_key(subject=other))


def test_client_event_id_is_idempotent_per_source(client):
    email = new_email()
    SubjectFactory(jurisdiction="FR", email=email, consents=["measurement"])
    first = post(client, [event(email, id="abc"), event(email, id="abc")]).json()
    again = post(client, [event(email, id="abc"), event(email, id="abc", source="crm")]).json()

    assert first["results"][0]["duplicate"] is False
    assert first["results"][1]["duplicate"] is True
    assert first["results"][1]["event_id"] == first["results"][0]["event_id"]
    assert again["results"][0] == {
        "index": 0,
        "id": "abc",
        "status": "accepted",
        "reason": "duplicate",
        "event_id": first["results"][0]["event_id"],
        "duplicate": True,
    }
    # the same id from another source is another event (the web grant is global-scope)
    assert again["results"][1]["duplicate"] is False
    assert again["results"][1]["status"] == "accepted"
    assert Event.objects.using("eu").filter(client_event_id="abc").count() == 2
    payloads = [a["payload"] for a in batch_audits("eu") if a["payload"]["source"] == "web"]
    assert payloads[0] == {"source": "web", "accepted": 1, "rejected": {}, "duplicates": 1}
    assert payloads[1] == {"source": "web", "accepted": 0, "rejected": {}, "duplicates": 1}


def test_regions_are_ingested_separately(client):
    eu_email, us_email = new_email(), new_email()
    SubjectFactory(jurisdiction="FR", email=eu_email, consents=["measurement"])
    ConsentFactory(
        subject=SubjectFactory(jurisdiction="US-NY", email=us_email),
        jurisdiction="US-NY",
        decision="granted",
    )
    response = post(client, [event(eu_email), event(us_email)])

    assert response.json()["accepted"] == 2
    assert (count("eu"), count("us")) == (1, 1)
    assert len(batch_audits("eu")) == 1 and len(batch_audits("us")) == 1
    assert batch_audits("eu")[0]["object_id"] == batch_audits("us")[0]["object_id"]


def test_merged_subject_events_go_to_the_survivor(client):
    email = new_email()
    merged = SubjectFactory(jurisdiction="FR", email=email)
    survivor = SubjectFactory(jurisdiction="FR")
    ConsentFactory(subject=survivor, decision="granted")
    Subject.objects.using("eu").filter(pk=merged.pk).update(merged_into=survivor.pk)
    response = post(client, [event(email)])
    assert response.json()["results"][0]["status"] == "accepted"
    assert Event.objects.using("eu").get().subject_id == survivor.pk


def test_a_client_id_stored_concurrently_is_caught_by_the_constraint_and_answered_duplicate(
    client, monkeypatch
):
    """Between a batch's reads and its insert another batch stores the same client event id:
    the unique constraint refuses the insert (inside the writes sent together, its error comes
    back with them), the region's transaction is retried, and the retry answers a duplicate;
    nothing of the first attempt stays."""
    from compliance.audit.selectors.verification import chain_verify
    from compliance.events.services import ingest

    email = new_email()
    subject = SubjectFactory(jurisdiction="FR", email=email)
    ConsentFactory(subject=subject, purpose="measurement", decision="granted")
    first = post(client, [event(email, id="evt-race")]).json()["results"][0]
    assert first["status"] == "accepted"
    real, calls = ingest.batch_reads, []

    def reads_before_the_other_batch_stored(**kwargs):
        found = real(**kwargs)
        calls.append(1)
        return dataclasses.replace(found, stored={}) if len(calls) == 1 else found

    monkeypatch.setattr(ingest, "batch_reads", reads_before_the_other_batch_stored)
    again = post(client, [event(email, id="evt-race")]).json()["results"][0]
    assert len(calls) == 2  # the first attempt was refused and retried
    assert again["reason"] == "duplicate" and again["event_id"] == first["event_id"]
    assert Event.objects.using("eu").filter(client_event_id="evt-race").count() == 1
    assert chain_verify(using="eu").ok


@pytest.mark.postgres
def test_stored_client_ids_are_probed_in_the_unique_index_whatever_the_statistics():
    """An event batch looks up its client ids by (source, id) probes of the unique index, even
    on a table grown since its last ANALYZE (where ``source IN (..) AND id IN (..)`` scanned
    every event of the source and filtered them); the answer is the stored events only."""
    import uuid

    from compliance.events.sql import batch_reads

    now = timezone.now()
    Event.objects.using("eu").bulk_create(
        Event(
            subject_id=uuid.uuid4(),
            source="web",
            name="page_view",
            purpose="measurement",
            occurred_at=now,
            received_at=now,
            properties_encrypted=b"x",
            client_event_id=f"old-{n}",
        )
        for n in range(2000)
    )
    asked = {("web", "old-7"), ("web", "old-1999"), ("web", "missing"), ("crm", "old-7")}

    reads = batch_reads(alias="eu", subject_ids=(), client_ids=asked)
    stored = Event.objects.using("eu").filter(client_event_id__in=["old-7", "old-1999"])
    assert reads.stored == {("web", e.client_event_id): e.pk for e in stored}

    from compliance.db.arrays import array_literal
    from compliance.events.sql import _STORED_PROBES

    pairs = sorted(asked)
    with connections["eu"].cursor() as cursor:
        cursor.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + _STORED_PROBES,
            [array_literal(p[0] for p in pairs), array_literal(p[1] for p in pairs)],
        )
        plan = json.dumps(cursor.fetchone()[0])
    assert "events_client_id_unique_per_source" in plan
    assert "client_event_id" in plan.split('"Index Cond"')[1].split('",')[0]
    assert '"Rows Removed by Filter"' not in plan
