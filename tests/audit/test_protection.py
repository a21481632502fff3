"""What protects the audit rows: triggers on PostgreSQL, the single write path on SQLite."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.db import DatabaseError, connections, transaction

from compliance.audit.checks import check_audit_triggers
from compliance.audit.protection import triggers_install
from compliance.audit.selectors.verification import chain_verify
from compliance.audit.services.checkpoints import checkpoint_sign
from tests.audit.helpers import append

pytestmark = pytest.mark.django_db(databases="__all__")
ROOT = Path(__file__).resolve().parents[2]


def refused(alias: str, sql: str) -> str:
    with pytest.raises(DatabaseError) as info:
        with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
            # test databases let the runner TRUNCATE (an owner-only setting row); not here
            cursor.execute(
                "DELETE FROM compliance_guard_setting WHERE key = 'test_database_truncate'"
            )
            cursor.execute(sql)
    return str(info.value)


@pytest.mark.postgres
@pytest.mark.parametrize("alias", ["default", "eu", "us"])
def test_postgresql_triggers_refuse_update_delete_truncate(alias):
    append(alias, 3)
    checkpoint_sign(using=alias)
    for table in ("audit_auditevent", "audit_auditcheckpoint"):
        assert "UPDATE on " + table + " refused" in refused(alias, f"UPDATE {table} SET id = id")
        assert "DELETE on " + table + " refused" in refused(alias, f"DELETE FROM {table}")
        assert "TRUNCATE on " + table + " refused" in refused(alias, f"TRUNCATE {table} CASCADE")
    assert chain_verify(using=alias).ok
    assert check_audit_triggers() == []


@pytest.mark.postgres
def test_system_check_warns_when_triggers_are_disabled_or_missing():
    with connections["eu"].cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_no_truncate")
        warnings = check_audit_triggers()
        assert [w.id for w in warnings] == ["audit.W001"]
        assert "'eu'" in warnings[0].msg
        assert "audit_auditevent_no_truncate on audit_auditevent is disabled" in warnings[0].msg
        cursor.execute(
            "DROP TRIGGER audit_auditcheckpoint_no_update_delete ON audit_auditcheckpoint"
        )
        messages = [w.msg for w in check_audit_triggers()]
        assert any(
            "audit_auditcheckpoint_no_update_delete" in m and "missing" in m for m in messages
        )
        triggers_install(using="eu")
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER ALL")
    assert check_audit_triggers() == []


def test_sqlite_protection_is_the_single_write_path_and_verification():
    """On SQLite (no triggers) nothing but the append service writes audit rows ...

    ... (checked here over the whole code base), and any change made behind its back, with
    raw SQL, is found by verification (``test_verify`` covers every kind of change).
    """
    writers = re.compile(
        r"(AuditEvent|AuditCheckpoint|AuditChainHead)\.objects[^\n]*\.(create|bulk_create|"
        r"update|delete|get_or_create|update_or_create|bulk_update)\("
        r"|INSERT INTO audit_|UPDATE audit_|DELETE FROM audit_"
        r"|(INSERT INTO|UPDATE|DELETE FROM) \{(EVENT|CHECKPOINT|HEAD)_TABLE\}"
    )
    allowed = {
        "compliance/audit/sql.py",  # the append service's store and chain head
        "compliance/audit/services/checkpoints.py",
        "compliance/db/guards_sql.py",  # the owner-defined guard functions (PostgreSQL)
        "compliance/retention/sql.py",  # drops a signed prefix (docs/retention.md)
    }
    offenders = []
    for path in ROOT.glob("**/*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith((".venv/", "tests/", "bench/", "var/")) or rel in allowed:
            continue
        if writers.search(path.read_text(errors="ignore")):
            offenders.append(rel)
    assert offenders == []
    append("eu", 3)
    with connections["eu"].cursor() as cursor:
        if connections["eu"].vendor == "sqlite":
            cursor.execute("UPDATE audit_auditevent SET code = 999 WHERE seq = 2")
            finding = chain_verify(using="eu").first_finding
            assert (finding.kind, finding.seq) == ("modified", 2)
        else:
            assert check_audit_triggers() == []


def test_append_refuses_payloads_with_personal_data():
    from compliance.audit.services.append import AuditPayloadError

    with pytest.raises(AuditPayloadError, match="e-mail"):
        append("eu", 1, contact="jane.doe@example.com")
    with pytest.raises(AuditPayloadError, match="only str"):
        append("eu", 1, amount=1.5)
    assert not chain_verify(using="eu").entries
