"""The control database's suppression mirror: erasure and replay write it, re-ingestion is
refused through it alone, and the backfill (migration 0005, ``suppressions_mirror``) copies the
regions' existing suppression lists into it."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest
from django.apps import apps as django_apps
from django.core.management import call_command
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from compliance.dsar.services.erasure import request_erase_run
from compliance.dsar.sql import directory_delete_suppressing
from compliance.models import Identity, Subject, SubjectDirectory, SuppressedIdentifier, Suppression
from compliance.services.subjects import SubjectSuppressedError, is_suppressed, subject_resolve
from compliance.services.suppressions import suppressed_regions
from tests.consent.conftest import api_client
from tests.consent.test_api import consent_body
from tests.dsar.helpers import ACTOR
from tests.events.conftest import event, post
from tests.factories import PrivacyRequestFactory, SubjectFactory

pytestmark = pytest.mark.django_db(databases="__all__")
BACKFILL = importlib.import_module("compliance.migrations.0005_suppressedidentifier").backfill


def _erase(email: str, *, jurisdiction: str, capture) -> list[str]:
    """Erase the person with ``email`` (plus a device id and a subject merged into it); their
    blind indexes, read before."""
    subject = SubjectFactory(
        email=email, jurisdiction=jurisdiction, identifiers={"device_id": f"dev-{email}"}
    )
    other = SubjectFactory(email=f"old-{email}", jurisdiction=jurisdiction)
    alias = subject.region
    Subject.objects.using(alias).filter(pk=other.pk).update(merged_into=subject.pk)
    ids = [subject.pk, other.pk]
    indexes = sorted(
        Identity.objects.using(alias)
        .filter(subject_id__in=ids)
        .values_list("blind_index", flat=True)
    )
    with capture(using=alias):
        request = PrivacyRequestFactory(email=email, jurisdiction=jurisdiction, approved=True)
    request_erase_run(region=alias, request_id=request.pk)
    return indexes


@pytest.mark.parametrize(
    ("jurisdiction", "home", "away"), [("FR", "eu", "us"), ("US-CA", "us", "eu")]
)
def test_erasure_writes_the_mirror_in_the_control_database_only(
    django_capture_on_commit_callbacks, jurisdiction, home, away
):
    indexes = _erase(
        "nina@example.org", jurisdiction=jurisdiction, capture=django_capture_on_commit_callbacks
    )
    assert len(indexes) == 3
    mirrored = SuppressedIdentifier.objects.filter(blind_index__in=indexes)
    assert sorted(mirrored.values_list("blind_index", "region")) == [(i, home) for i in indexes]
    assert {f.name for f in SuppressedIdentifier._meta.fields} == {
        "id", "blind_index", "region", "created_at"
    }  # fmt: skip
    assert Suppression.objects.using(home).filter(blind_index__in=indexes).count() == 3
    assert not Suppression.objects.using(away).exists()
    for region in ("eu", "us"):
        assert (
            SuppressedIdentifier._meta.db_table
            not in connections[region].introspection.table_names()
        )
    assert suppressed_regions(blind_indexes=[*indexes, "nobody"]) == dict.fromkeys(indexes, home)


def test_erased_person_is_refused_through_the_mirror_alone(django_capture_on_commit_callbacks):
    """The regional rows gone (as if the region were unreachable): the mirror still refuses
    consent writes (one identifier, and stitching two) and events, and nothing is created."""
    _erase("sam@example.fr", jurisdiction="FR", capture=django_capture_on_commit_callbacks)
    Suppression.objects.using("eu").all().delete()
    before = SubjectDirectory.objects.count()
    consents = api_client("consent:write")
    email = {"type": "email", "value": "Sam@Example.fr"}
    response = consents.post("/api/v1/consents/", consent_body(identifier=email), format="json")
    assert response.status_code == 409, response.json()
    assert response.json()["error"]["code"] == "suppressed"
    with pytest.raises(SubjectSuppressedError):
        subject_resolve(
            identifier_type="email", value="sam@example.fr", jurisdiction="DE", actor=ACTOR
        )
    events = api_client("events:write")
    stitched = event("sam@example.fr", jurisdiction="FR")
    stitched["identifiers"].append({"type": "anonymous_id", "value": "anon-sam"})
    response = post(events, [event("SAM@example.fr"), stitched])
    assert [r["reason"] for r in response.json()["results"]] == ["subject_suppressed"] * 2
    assert SubjectDirectory.objects.count() == before
    assert not Subject.objects.using("eu").exists() and not Subject.objects.using("us").exists()


def test_directory_rows_go_to_the_mirror_in_the_statement_that_deletes_them():
    ada = SubjectFactory(email="ada@example.fr")
    bob = SubjectFactory(email="bob@example.com", jurisdiction="US-NY")
    ids = [ada.pk, bob.pk]
    entries = dict(
        SubjectDirectory.objects.filter(subject_id__in=ids).values_list("blind_index", "region")
    )
    assert sorted(entries.values()) == ["eu", "us"]
    with CaptureQueriesContext(connections["default"]) as queries:
        removed = directory_delete_suppressing(subject_ids=ids, at=timezone.now())
    assert removed == {ada.pk: 1, bob.pk: 1}
    if connections["default"].vendor == "postgresql":
        statements = [q["sql"] for q in queries.captured_queries]
        assert len(statements) == 1 and statements[0].startswith("WITH gone AS (DELETE"), statements
    assert dict(SuppressedIdentifier.objects.values_list("blind_index", "region")) == entries
    assert not SubjectDirectory.objects.filter(subject_id__in=ids).exists()
    # again: nothing left to delete, the mirror unchanged
    assert directory_delete_suppressing(subject_ids=ids, at=timezone.now()) == {}
    assert SuppressedIdentifier.objects.count() == 2


def _regional_suppressions() -> dict[str, list[str]]:
    """Suppression rows written straight to each region, as before the mirror existed."""
    made = {"eu": [f"eu-{n:02d}" for n in range(5)], "us": ["us-00", "eu-00"]}
    for region, indexes in made.items():
        Suppression.objects.using(region).bulk_create(
            [Suppression(blind_index=i, identifier_type="email") for i in indexes]
        )
    return made


def test_migration_backfill_copies_each_region_into_the_mirror():
    made = _regional_suppressions()
    for region in ("eu", "us"):  # what the migration runs on each region alias
        BACKFILL(django_apps, SimpleNamespace(connection=connections[region]))
    mirrored = dict(SuppressedIdentifier.objects.values_list("blind_index", "region"))
    assert mirrored == {**dict.fromkeys(made["eu"], "eu"), "us-00": "us"}  # first region kept
    assert all(is_suppressed(blind_index=i) for i in made["eu"] + made["us"])


def test_suppressions_mirror_command_is_idempotent_and_chunked(settings):
    made = _regional_suppressions()
    call_command("suppressions_mirror", region=["us"], stdout=open("/dev/null", "w"))
    assert set(SuppressedIdentifier.objects.values_list("blind_index", flat=True)) == set(
        made["us"]
    )
    from compliance.services.suppressions import suppressions_mirror_backfill

    assert suppressions_mirror_backfill(region="eu", chunk=2) == 5
    assert suppressions_mirror_backfill(region="eu", chunk=2) == 5
    assert SuppressedIdentifier.objects.count() == 6
    assert SuppressedIdentifier.objects.get(blind_index="eu-00").region == "us"  # kept as it was


def test_replay_restores_the_mirror_of_a_restored_control_database(
    django_capture_on_commit_callbacks,
):
    indexes = _erase(
        "rita@example.fr", jurisdiction="FR", capture=django_capture_on_commit_callbacks
    )
    SuppressedIdentifier.objects.all().delete()  # the control database restored from before
    call_command("replay_erasures", region=["eu"], stdout=open("/dev/null", "w"))
    assert set(SuppressedIdentifier.objects.values_list("blind_index", "region")) == {
        (i, "eu") for i in indexes
    }
    with pytest.raises(SubjectSuppressedError):
        subject_resolve(
            identifier_type="email", value="rita@example.fr", jurisdiction="FR", actor=ACTOR
        )
