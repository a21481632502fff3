"""The access report a person can read (GDPR Art. 15(1)/(2), CCPA right to know).

One person with consents under two lawful bases, events from two sources, two segment stays, a
retention rule and a webhook subscriber runs an access request; every Art. 15 element is in
``report.json`` and rendered in ``report.html``; no internal field appears anywhere in the
package; CSVs keep their header when empty; the erasure certificate restates the receipt.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile

import pytest

from compliance.audit.services.append import Actor
from compliance.consent.services.record import consent_record
from compliance.dsar.models import Package, PrivacyRequest
from compliance.dsar.services.export import package_read, request_export_run
from compliance.dsar.services.receipts import erasure_certificate_html
from compliance.dsar.services.report import short_reference
from compliance.dsar.services.report_words import INTERNAL_FIELDS
from compliance.dsar.services.requests import request_open
from compliance.events.parsing import event_batch_parse
from compliance.events.services.ingest import events_ingest
from compliance.feed.services.subscriptions import subscription_create
from compliance.retention.models import RetentionRule
from segments.services.memberships import memberships_apply
from tests.dsar.helpers import event_body
from tests.factories import SegmentFactory, SubjectFactory

pytestmark = pytest.mark.django_db(databases="__all__")
ACTOR = Actor.system("test")
EMAIL = "report-person@example.fr"
#: names only the toolkit uses internally; none may leak into what the person receives
LEAKS = sorted(INTERNAL_FIELDS | {"blind_index", "audit_token", "client_id", "idempotency_key"})


def _person():
    subject = SubjectFactory(email=EMAIL, jurisdiction="FR")
    for purpose in ("audience_segmentation", "measurement"):
        consent_record(
            subject=subject,
            purpose=purpose,
            decision="granted",
            source="web",
            actor=ACTOR,
            jurisdiction="FR",
            collection_point="cookie-banner",
        )
    consent_record(  # a second lawful basis, at a second collection point
        subject=subject,
        purpose="email_marketing",
        decision="granted",
        lawful_basis="legitimate_interests",
        source="crm",
        actor=ACTOR,
        jurisdiction="FR",
        collection_point="account-signup",
    )
    batch = [event_body(EMAIL, name="page_view")]
    batch.append({**event_body(EMAIL, name="app_open"), "source": "ios_app"})
    result = events_ingest(events=event_batch_parse(data={"events": batch}), actor=ACTOR)
    assert [o.status for o in result.outcomes] == ["accepted", "accepted"], result.outcomes
    first = SegmentFactory(key="trial-readers", layers=("behavioral",))
    second = SegmentFactory(key="pricing-intent", layers=("intent",))
    memberships_apply(segment=first, enters=[subject.pk], exits=[], actor=ACTOR)
    memberships_apply(segment=first, enters=[], exits=[subject.pk], actor=ACTOR, reason="criteria")
    memberships_apply(segment=second, enters=[subject.pk], exits=[], actor=ACTOR)
    RetentionRule.objects.create(category="behavioral_events", region="eu", max_age_days=400)
    subscription_create(
        name="crm-sync",
        url="https://hooks.example.com/audiences",
        event_types=["enter", "exit"],
        purpose="keeps our CRM's campaign audiences in step",
        actor=ACTOR,
    )
    return subject


def _package(django_capture_on_commit_callbacks) -> tuple[zipfile.ZipFile, PrivacyRequest]:
    _person()
    with django_capture_on_commit_callbacks(using="eu"):
        opened = request_open(
            type="access",
            regulation="gdpr",
            identifiers=[{"type": "email", "value": EMAIL}],
            verification_method="email_confirmation",
            actor=ACTOR,
            jurisdiction="FR",
        ).request
    request = request_export_run(region="eu", request_id=opened.pk)
    assert request.status == "completed"
    data, _ = package_read(request=request, actor=ACTOR)
    return zipfile.ZipFile(io.BytesIO(data)), request


def test_access_report_holds_every_art_15_element_and_no_internal_field(
    django_capture_on_commit_callbacks,
):
    archive, request = _package(django_capture_on_commit_callbacks)
    names = archive.namelist()
    assert {"report.html", "report.json", "data.json", "summary.txt"} <= set(names)
    report = json.loads(archive.read("report.json"))
    html = archive.read("report.html").decode()

    # the request and the controller (settings, with defaults)
    assert report["request"]["reference"] == short_reference(request.pk)
    assert report["controller"]["name"] and report["controller"]["email"]
    assert report["controller"]["email"] in html and report["request"]["reference"] in html

    # (1)(b) categories of data, with the number of records
    cats = {c["key"]: c for c in report["data_categories"]}
    assert cats["events.Event"]["records"] == 2
    assert cats["compliance.Identity"]["records"] == 1
    for category in report["data_categories"]:
        assert category["category"] in html

    # (1)(a) purposes: the lawful basis and the consent history, two bases
    purposes = {p["key"]: p for p in report["purposes"]}
    assert purposes["measurement"]["lawful_basis"] == ["(a) consent"]
    assert purposes["email_marketing"]["lawful_basis"] == ["(f) legitimate interests"]
    assert [h["decision"] for h in purposes["measurement"]["consent_history"]] == ["granted"]
    assert purposes["email_marketing"]["consent_history"][0]["source"] == "crm"
    for purpose in purposes.values():
        assert purpose["name"] in html
    assert "(a) consent" in html and "(f) legitimate interests" in html

    # (1)(c) recipients: the webhook subscriber and its declared purpose
    (recipient,) = report["recipients"]
    assert recipient["name"] == "crm-sync"
    assert recipient["purpose"] == "keeps our CRM's campaign audiences in step"
    assert report["recipient_categories"]
    assert "crm-sync" in html and "keeps our CRM&#x27;s campaign audiences in step" in html

    # (1)(d) retention per category, from the retention rule
    assert cats["events.Event"]["retention_days"] == 400
    assert any("400 days" in r["period"] for r in report["retention"])
    assert "400 days" in html

    # (1)(g) sources: two event sources and the collection points
    sources = {s["key"]: s for s in report["sources"]}
    assert {"web", "ios_app", "crm"} <= set(sources)
    assert "cookie-banner" in sources["web"]["collection_points"]
    assert "account-signup" in sources["crm"]["collection_points"]
    for name in ("Website", "iOS app", "cookie-banner", "account-signup"):
        assert name in html

    # (1)(h) profiling: both segments, layers, motion, the logic, two stays
    segments = {s["key"]: s for s in report["segments"]}
    assert set(segments) == {"trial-readers", "pricing-intent"}
    assert (
        not segments["trial-readers"]["currently_in"] and segments["pricing-intent"]["currently_in"]
    )
    assert segments["trial-readers"]["layers"] == ["behavioral"]
    assert segments["pricing-intent"]["layers"] == ["intent"]
    assert segments["pricing-intent"]["motion"]
    assert "profiling" in segments["pricing-intent"]["logic"]
    assert segments["trial-readers"]["stays"][0]["exited_at"]
    assert report["automated_decision_making"]["profiling"] is True
    for segment in segments.values():
        assert segment["logic"].split(".")[0] in html
    assert "Art. 22" in html

    # (1)(e)/(f), (2): rights and how to exercise them
    rights = {r["key"] for r in report["rights"]["rights"]}
    assert {"rectification", "erasure", "restriction", "objection", "complaint"} <= rights
    assert report["controller"]["email"] in report["rights"]["how_to_exercise"]
    assert "lodge a complaint" in html

    # self-contained: no external asset, no script
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html)
    assert "<script" not in html.lower()

    # no internal field anywhere in the package: keys of JSON, CSV headers, text
    for name in names:
        text = archive.read(name).decode()
        for field in LEAKS:
            assert f'"{field}"' not in text, (name, field)
            if name.endswith(".csv"):
                header = next(csv.reader(io.StringIO(text)), [])
                assert field not in header, (name, field)


def test_csv_files_keep_their_header_when_empty(django_capture_on_commit_callbacks):
    archive, _ = _package(django_capture_on_commit_callbacks)
    holds = archive.read("tables/dsar.LegalHold.csv").decode()
    assert holds.strip() and holds.strip().splitlines()[0].startswith("id,")
    assert len(holds.strip().splitlines()) == 1  # header only
    identities = archive.read("tables/compliance.Identity.csv").decode().splitlines()
    assert identities[0].split(",")[:3] == ["id", "subject_id", "identifier_type"]
    assert "value" in identities[0].split(",") and EMAIL in identities[1]
    assert Package.objects.using("eu").count() == 1


def test_erasure_certificate_restates_the_signed_receipt():
    from compliance.dsar.services.erasure import request_erase_run
    from compliance.dsar.services.requests import request_approve

    _person()
    opened = request_open(
        type="erasure",
        regulation="gdpr",
        identifiers=[{"type": "email", "value": EMAIL}],
        verification_method="email_confirmation",
        actor=ACTOR,
        jurisdiction="FR",
    ).request
    request_approve(request=opened, actor=ACTOR)
    done = request_erase_run(region="eu", request_id=opened.pk)
    assert done.status == "completed"
    html = erasure_certificate_html(request=done)
    assert "Certificate of erasure" in html and short_reference(done.pk) in html
    assert "valid" in html and done.receipt["receipt_id"] in html
    assert "Events" in html  # kinds of data by their names
    assert EMAIL not in html
