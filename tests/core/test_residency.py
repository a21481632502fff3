"""Residency: router, migrations per alias, system checks, placement of subject rows."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.core import checks
from django.db import connections, models

from compliance.audit.services.append import Actor
from compliance.checks import check_residency_declared, residency_crossing_fields
from compliance.models import Subject, SubjectDirectory
from compliance.regions import region_for_country
from compliance.residency import REGIONAL, RegionalModel, RegionRequiredError, residency_of
from compliance.services.subjects import subject_resolve
from tests.conftest import on_postgres

pytestmark = pytest.mark.django_db(databases="__all__")
ACTOR = Actor.system("test")


def count(alias: str, table: str, where: str = "", params=()) -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table} {where}", params)
        return cursor.fetchone()[0]


def tables(alias: str) -> set[str]:
    return set(connections[alias].introspection.table_names())


def test_regional_model_without_database_raises_clear_error():
    with pytest.raises(RegionRequiredError, match=r"compliance.Subject is REGIONAL.*using"):
        Subject.objects.count()
    with pytest.raises(RegionRequiredError):
        Subject.objects.create(region="eu")


def test_global_tables_only_on_default_and_regional_only_on_regions():
    assert "compliance_subjectdirectory" in tables("default")
    assert "compliance_subject" not in tables("default")
    for region in ("eu", "us"):
        assert "compliance_subject" in tables(region)
        assert "compliance_identity" in tables(region)
        assert "compliance_subjectdirectory" not in tables(region)
        assert "auth_user" not in tables(region)
    # the audit chain lives in every database
    for alias in ("default", "eu", "us"):
        assert "audit_auditevent" in tables(alias)


@pytest.mark.parametrize(
    ("country", "region"),
    [
        ("FR", "eu"),
        ("de", "eu"),
        ("NO", "eu"),
        ("US-CA", "us"),
        ("US", "us"),
        ("JP", "us"),
        (None, "us"),
    ],
)
def test_region_for_country(country, region):
    assert region_for_country(country=country) == region


def test_region_map_is_configurable(settings):
    settings.COMPLIANCE_COUNTRY_REGION_MAP = {"GB": "eu"}
    assert region_for_country(country="GB") == "eu"
    assert region_for_country(country="FR") == "us"  # the map replaces the default


@pytest.mark.parametrize(
    ("jurisdiction", "home", "away"), [("FR", "eu", "us"), ("US-CA", "us", "eu")]
)
def test_subject_rows_only_in_home_region(jurisdiction, home, away):
    subject = subject_resolve(
        identifier_type="email",
        value=f"Person.{home}@Example.com",
        jurisdiction=jurisdiction,
        actor=ACTOR,
    )
    assert subject.region == home
    sid = subject.pk.hex if connections[home].vendor == "sqlite" else str(subject.pk)
    assert count(home, "compliance_subject", "WHERE id = %s", [sid]) == 1
    assert count(home, "compliance_identity") == 1
    assert count(home, "compliance_subjectkey") == 1
    for table in ("compliance_subject", "compliance_identity", "compliance_subjectkey"):
        assert count(away, table) == 0
    assert count("default", "compliance_subjectdirectory") == 1
    # the control database holds no plaintext identifier
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT blind_index, identifier_type, region FROM compliance_subjectdirectory"
        )
        row = cursor.fetchone()
    assert "example" not in " ".join(map(str, row)).lower()
    assert row[2] == home


@pytest.mark.postgres
def test_on_postgres_eu_subject_rows_exist_only_in_eu_database():
    assert on_postgres()
    test_subject_rows_only_in_home_region("DE", "eu", "us")


def test_subject_resolve_is_idempotent_and_region_is_fixed():
    first = subject_resolve(
        identifier_type="email", value="a@example.com", jurisdiction="FR", actor=ACTOR
    )
    again = subject_resolve(
        identifier_type="email", value=" A@EXAMPLE.COM ", jurisdiction="US", actor=ACTOR
    )
    assert again.pk == first.pk and again.region == "eu"
    assert SubjectDirectory.objects.count() == 1
    assert Subject.objects.using("eu").count() == 1


def test_unknown_subject_without_create_returns_none():
    assert (
        subject_resolve(
            identifier_type="email",
            value="x@example.com",
            jurisdiction="FR",
            actor=ACTOR,
            create=False,
        )
        is None
    )
    assert Subject.objects.using("eu").count() == 0


def test_system_check_flags_model_without_residency():
    class Undeclared(models.Model):
        class Meta:
            app_label = "compliance"

    try:
        errors = check_residency_declared()
        ids = {(e.id, e.obj) for e in errors}
        assert ("compliance.E001", Undeclared) in ids
    finally:
        del apps.all_models["compliance"]["undeclared"]
        apps.clear_cache()


def test_foreign_key_from_regional_to_global_fails():
    from django.contrib.auth.models import User

    class BadRegional(RegionalModel):
        owner = models.ForeignKey(User, on_delete=models.CASCADE)

        class Meta:
            app_label = "compliance"

    try:
        assert residency_of(BadRegional) is REGIONAL
        assert residency_crossing_fields(BadRegional) == ["owner"]
        errors = [e for e in checks.run_checks() if e.id == "compliance.E002"]
        assert any("BadRegional.owner" in e.msg for e in errors)
    finally:
        del apps.all_models["compliance"]["badregional"]
        apps.clear_cache()


def test_every_installed_model_declares_residency_and_no_relation_crosses():
    assert check_residency_declared() == []
    for model in apps.get_models():
        assert residency_crossing_fields(model) == [], model


def test_region_without_database_alias_is_an_error(settings):
    from compliance.checks import check_regions_have_databases

    settings.COMPLIANCE_REGIONS = ["eu", "us", "apac"]
    errors = check_regions_have_databases()
    assert [e.id for e in errors] == ["compliance.E004"]
    assert "apac" in errors[0].msg
