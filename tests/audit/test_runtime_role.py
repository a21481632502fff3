"""The runtime role created by ``db_roles``: every way a session could open a guard is refused,
and the application's own privileged writes work through the guard functions.

PostgreSQL only: these tests connect as the runtime role (a plain role, neither superuser nor
table owner) next to the owner that migrated the test databases.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta

import psycopg
import pytest
from django.core.management import call_command
from django.db import connections
from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.models import AuditCheckpoint, AuditEvent
from compliance.audit.selectors.verification import chain_verify
from compliance.audit.services.append import AuditEntry, audit_append
from compliance.audit.services.checkpoints import checkpoint_sign
from compliance.consent.models import ConsentEvent
from compliance.consent.services.record import consent_record
from compliance.dsar.models import Status
from compliance.dsar.services.erasure import request_erase_run
from compliance.retention.services.enforce import retention_enforce
from segments.models import SegmentMembership
from segments.services.memberships import memberships_apply
from tests.conftest import database_url
from tests.factories import PrivacyRequestFactory, SegmentFactory, StaffFactory, SubjectFactory
from tests.retention.test_enforce import rule
from tests.segments.helpers import ACTOR

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(databases="__all__", transaction=True)]
ROLE = "compliance_runtime_test"
ALIASES = ("default", "eu", "us")


@pytest.fixture
def officer():
    return StaffFactory(username="officer1")


@pytest.fixture
def runtime_role():
    for alias in ALIASES:
        call_command("db_roles", database=alias, app_role=ROLE, stdout=open("/dev/null", "w"))
    return ROLE


def runtime_url(alias: str) -> str:
    return database_url(alias).replace("postgresql://postgres@", f"postgresql://{ROLE}@", 1)


def refused(alias: str, *statements: str, params=None) -> str:
    """Run ``statements`` as the runtime role in one transaction and commit; the error text."""
    with psycopg.connect(runtime_url(alias)) as conn:
        with pytest.raises(psycopg.Error) as info:
            with conn.transaction(), conn.cursor() as cursor:
                for sql in statements:
                    cursor.execute(sql, params if "%s" in sql else None)
    return str(info.value)


@contextlib.contextmanager
def as_runtime_role():
    """Django's connections as the runtime role for the block (the owner's afterwards)."""
    saved = {}
    for alias in ALIASES:
        connections[alias].close()
        saved[alias] = connections[alias].settings_dict["USER"]
        connections[alias].settings_dict["USER"] = ROLE
    try:
        yield
    finally:
        for alias, user in saved.items():
            connections[alias].close()
            connections[alias].settings_dict["USER"] = user


def _counts(alias: str) -> dict[str, object]:
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM audit_auditevent), "
            "(SELECT count(*) FROM audit_auditcheckpoint), "
            "(SELECT size FROM audit_auditchainhead WHERE chain_id = %s), "
            "(SELECT count(*) FROM consent_consentevent WHERE decision = 'granted'), "
            "(SELECT count(*) FROM segments_segmentmembership)",
            [alias],
        )
        return dict(
            zip(
                ("entries", "checkpoints", "head", "grants", "stays"),
                cursor.fetchone(),
                strict=True,
            )
        )


def test_db_roles_is_idempotent_and_the_role_is_plain(runtime_role):
    call_command("db_roles", database="eu", app_role=ROLE, stdout=open("/dev/null", "w"))
    with connections["eu"].cursor() as cursor:
        cursor.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = %s", [ROLE]
        )
        assert cursor.fetchone() == (False, False, False)
        cursor.execute(
            "SELECT privilege_type FROM information_schema.role_table_grants "
            "WHERE grantee = %s AND table_name = 'audit_auditevent' ORDER BY 1",
            [ROLE],
        )
        assert [p for (p,) in cursor.fetchall()] == ["INSERT", "SELECT"]
    call_command("db_roles", database="default", app_role=ROLE, stdout=open("/dev/null", "w"))
    with connections["default"].cursor() as cursor:  # the suppression mirror: append-only
        cursor.execute(
            "SELECT privilege_type FROM information_schema.role_table_grants "
            "WHERE grantee = %s AND table_name = 'compliance_suppressedidentifier' ORDER BY 1",
            [ROLE],
        )
        assert [p for (p,) in cursor.fetchall()] == ["INSERT", "SELECT"]


def test_every_session_key_is_refused_and_nothing_changes(officer, runtime_role):
    seg = SegmentFactory(user=officer)
    someone = SubjectFactory(consented=True)
    memberships_apply(segment=seg, enters=[someone.pk], exits=[], actor=ACTOR)
    checkpoint_sign(using="eu", force=True)
    before = _counts("eu")
    insert = (
        "INSERT INTO segments_segmentmembership (subject_id, segment_key, entered_at, "
        "entered_reason, exited_reason, consent_event_ids) "
        f"VALUES ('{uuid.uuid4()}', 'sneaky', now(), 'manual', '', '[]')"
    )
    attacks = {
        "delete an entry": ["DELETE FROM audit_auditevent WHERE seq = 1"],
        "empty the log": ["TRUNCATE audit_auditevent, audit_auditcheckpoint"],
        "rewrite a consent": ["UPDATE consent_consentevent SET decision = 'granted'"],
        "delete a consent": ["DELETE FROM consent_consentevent"],
        "insert a stay": [insert],
        "close a stay": ["UPDATE segments_segmentmembership SET exited_at = now()"],
        "delete checkpoints": ["DELETE FROM audit_auditcheckpoint"],
        "reset the head": ["UPDATE audit_auditchainhead SET size = 0"],
        "forge a permit": [
            "INSERT INTO compliance_guard_permit VALUES (pg_current_xact_id(), 'delete')"
        ],
        "open a permit": ["SELECT compliance_permit_open('delete')"],
        "lower a floor": ["UPDATE compliance_guard_setting SET value = '0'"],
        "erase without a request": [
            f"SELECT * FROM compliance_erase_rows('consent_consentevent', "
            f"ARRAY['{someone.pk}']::uuid[], ARRAY[]::uuid[])"
        ],
        "prune young entries": ["SELECT audit_prune('eu', 1, 0)"],
        "move the head back": ["SELECT audit_head_advance('eu', 1, 'x')"],
    }
    keys = {
        "set_config": [
            f"SELECT set_config('{name}', '{value}', true)"
            for name, value in (
                ("compliance.write_path", "retention"),
                ("compliance.write_path", "erasure"),
                ("compliance.write_path", "membership_service"),
                ("compliance.audit_maintenance", "on"),
            )
        ],
        "SET LOCAL": [
            "SET LOCAL compliance.write_path = 'erasure'",
            "SET LOCAL compliance.audit_maintenance = 'on'",
        ],
    }
    for name, statements in attacks.items():
        for key, opening in keys.items():
            for prefix in opening:
                message = refused("eu", prefix, *statements)
                assert message, f"{name} with {key} ({prefix}) was not refused"
    assert _counts("eu") == before
    assert chain_verify(using="eu").ok


def test_the_application_works_as_the_runtime_role(officer, runtime_role, settings):
    """Consent, memberships (enter and exit), erasure and audit retention, end to end."""
    settings.COMPLIANCE_RETENTION_AUDIT_MIN_DAYS = 30
    call_command("db_roles", database="eu", app_role=ROLE, stdout=open("/dev/null", "w"))
    seg = SegmentFactory(user=officer)
    old = timezone.now() - timedelta(days=400)
    audit_append(
        using="eu",
        entries=[AuditEntry(code=AuditCode.CONFIGURATION_CHANGED, actor=ACTOR, payload={"n": 1})],
        at=old,
    )
    checkpoint = checkpoint_sign(using="eu", force=True)
    rule("audit_entries", days=30)
    with as_runtime_role():
        with connections["eu"].cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone()[0] == ROLE
        subject = SubjectFactory(email="rita@example.fr", consented=True)
        result = memberships_apply(segment=seg, enters=[subject.pk], exits=[], actor=ACTOR)
        assert result.entered == [subject.pk]
        consent_record(
            subject=subject,
            purpose="audience_segmentation",
            decision="withdrawn",
            source="web",
            method="ui",
            jurisdiction="FR",
            actor=ACTOR,
        )
        stay = SegmentMembership.objects.using("eu").get(subject_id=subject.pk)
        assert stay.exited_reason == "consent_withdrawn"
        request = PrivacyRequestFactory(email="rita@example.fr", approved=True)
        done = request_erase_run(region="eu", request_id=request.pk)
        assert done.status == Status.COMPLETED
        assert not ConsentEvent.objects.using("eu").filter(subject_id=subject.pk).exists()
        assert not SegmentMembership.objects.using("eu").filter(subject_id=subject.pk).exists()
        [outcome] = retention_enforce(region="eu")
        assert outcome.removed == {"audit.AuditEvent": checkpoint.size}
        assert chain_verify(using="eu").ok
    assert AuditEvent.objects.using("eu").order_by("seq").first().seq == checkpoint.size + 1
    assert AuditCheckpoint.objects.using("eu").filter(pk=checkpoint.pk).exists()


def test_system_check_warns_when_the_application_connects_as_owner_or_superuser(
    runtime_role, settings
):
    from compliance.checks import check_runtime_role

    settings.DEBUG = True
    assert check_runtime_role() == []  # development settings: no warning
    settings.DEBUG = False
    warnings = check_runtime_role()
    assert {w.id for w in warnings} == {"compliance.W010"}
    assert any("'eu'" in w.msg and "superuser" in w.msg for w in warnings)
    with as_runtime_role():
        assert check_runtime_role() == []


def test_db_roles_refuses_mistakes_with_a_clear_message(runtime_role):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="unknown alias"):
        call_command("db_roles", database="mars", app_role=ROLE)
    with pytest.raises(CommandError, match="lower-case"):
        call_command("db_roles", database="eu", app_role="Robert'); DROP TABLE x;--")
    with pytest.raises(CommandError, match="not as the runtime role"):
        call_command("db_roles", database="eu", app_role="postgres")  # the owner itself
