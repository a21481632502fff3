"""Database-level protection of the audit tables on PostgreSQL.

Triggers on ``audit_auditevent``, ``audit_auditcheckpoint`` and ``audit_auditchainhead``
refuse every UPDATE and DELETE (row level) and every TRUNCATE (statement level), unless a
guard function of ``compliance.db_guards`` holds a permit for it: ``audit_prune`` (retention
drops a prefix up to a checkpoint) and ``audit_head_advance`` (moves the head over entries that
exist). A permit is a row only the owner can write; no session setting opens anything. The
runtime role has no UPDATE, DELETE or TRUNCATE on these tables in the first place
(``db_roles``); the triggers also stop the owner's own mistakes. A table owner or superuser can
still disable the triggers: that is what ``audit_verify`` with the chain's own checkpoint
entries and the witness outside the database are for (``docs/audit.md``, threat table).

Test databases only: Django's test runner empties tables between transactional tests with
TRUNCATE. When the migration runs inside a Django test environment (``setup_test_environment``
was called, e.g. by pytest-django or ``bench.bench_databases``) it stores
``test_database_truncate = on`` in the owner-only ``compliance_guard_setting`` table, which lets
TRUNCATE (never UPDATE or DELETE) through. Production databases are never migrated inside a
test environment, and the runtime role cannot write that table.

SQLite (embedded default) has no such triggers: there, the append service is the only writer
in the code base and ``audit_verify`` detects any change made behind its back.
"""

from __future__ import annotations

from django.db import connections

from compliance.audit.hashing import GENESIS
from compliance.db_guards import (
    PERMIT_SQL,
    SETTING_TABLE,
    audit_trigger_function_sql,
    head_functions_sql,
    schema_of,
)

PROTECTED_TABLES = ("audit_auditevent", "audit_auditcheckpoint", "audit_auditchainhead")


def trigger_names(table: str) -> tuple[str, str]:
    return (f"{table}_no_update_delete", f"{table}_no_truncate")


def triggers_install(*, using: str) -> None:
    """Create (or replace) the refusing triggers on ``using``; no-op unless PostgreSQL."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    schema = schema_of(connection)
    with connection.cursor() as cursor:
        cursor.execute(PERMIT_SQL)
        cursor.execute(audit_trigger_function_sql(schema=schema))
        cursor.execute(head_functions_sql(schema=schema, genesis=GENESIS))
        for table in PROTECTED_TABLES:
            row_trigger, truncate_trigger = trigger_names(table)
            cursor.execute(f"DROP TRIGGER IF EXISTS {row_trigger} ON {table}")
            cursor.execute(
                f"CREATE TRIGGER {row_trigger} BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
            )
            cursor.execute(f"DROP TRIGGER IF EXISTS {truncate_trigger} ON {table}")
            cursor.execute(
                f"CREATE TRIGGER {truncate_trigger} BEFORE TRUNCATE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
            )


def triggers_drop(*, using: str) -> None:
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for table in PROTECTED_TABLES:
            for name in trigger_names(table):
                cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        cursor.execute("DROP FUNCTION IF EXISTS audit_refuse_change()")


def maintenance_for_test_database(*, using: str) -> None:
    """Let the test runner TRUNCATE audit tables (an owner-only setting row, test databases)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(PERMIT_SQL)
        cursor.execute(
            f"INSERT INTO {SETTING_TABLE} VALUES ('test_database_truncate', 'on') "
            "ON CONFLICT (key) DO UPDATE SET value = 'on'"
        )


def in_test_environment() -> bool:
    from django.test.utils import _TestState

    return hasattr(_TestState, "saved_data")


def triggers_problems(*, using: str) -> list[str]:
    """What is wrong with the protection of ``using`` (empty when whole or not PostgreSQL)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return []
    problems = []
    with connection.cursor() as cursor:
        for table in PROTECTED_TABLES:
            cursor.execute(
                "SELECT t.tgname, t.tgenabled FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE c.relname = %s AND c.relnamespace = to_regnamespace(current_schema()) "
                "AND NOT t.tgisinternal",
                [table],
            )
            found = dict(cursor.fetchall())
            for name in trigger_names(table):
                state = found.get(name)
                if state is None:
                    problems.append(f"trigger {name} on {table} is missing")
                elif state == "D":
                    problems.append(f"trigger {name} on {table} is disabled")
        cursor.execute("SELECT current_setting('session_replication_role')")
        role = cursor.fetchone()[0]
        if role == "replica":
            problems.append("session_replication_role = replica: triggers do not fire")
    return problems
