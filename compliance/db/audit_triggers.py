"""The refusing triggers on the audit tables (PostgreSQL; nothing on SQLite): installed by the
audit migrations, checked by ``audit.W001`` (``compliance.audit.protection`` explains them)."""

from __future__ import annotations

from django.db import connections

from compliance.audit.hashing import GENESIS
from compliance.audit.sql import CHECKPOINT_TABLE, EVENT_TABLE, HEAD_TABLE
from compliance.db.guards_sql import (
    PERMIT_SQL,
    SETTING_TABLE,
    audit_trigger_function_sql,
    head_functions_sql,
    schema_of,
)
from compliance.db.vendor import is_postgresql

PROTECTED_TABLES = (EVENT_TABLE, CHECKPOINT_TABLE, HEAD_TABLE)


def trigger_names(table: str) -> tuple[str, str]:
    """The row-level and the TRUNCATE trigger of ``table``."""
    return (f"{table}_no_update_delete", f"{table}_no_truncate")


def triggers_install(*, using: str) -> None:
    """Create (or replace) the refusing triggers on ``using``; no-op unless PostgreSQL."""
    if not is_postgresql(using):
        return
    connection = connections[using]
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
    """Drop the triggers and their function (the migration's reverse); no-op unless
    PostgreSQL."""
    if not is_postgresql(using):
        return
    with connections[using].cursor() as cursor:
        for table in PROTECTED_TABLES:
            for name in trigger_names(table):
                cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        cursor.execute("DROP FUNCTION IF EXISTS audit_refuse_change()")


def maintenance_for_test_database(*, using: str) -> None:
    """Let the test runner TRUNCATE audit tables (an owner-only setting row, test databases)."""
    if not is_postgresql(using):
        return
    with connections[using].cursor() as cursor:
        cursor.execute(PERMIT_SQL)
        cursor.execute(
            f"INSERT INTO {SETTING_TABLE} VALUES ('test_database_truncate', 'on') "
            "ON CONFLICT (key) DO UPDATE SET value = 'on'"
        )


def triggers_problems(*, using: str) -> list[str]:
    """What is wrong with the protection of ``using`` (empty when whole or not PostgreSQL)."""
    if not is_postgresql(using):
        return []
    problems = []
    with connections[using].cursor() as cursor:
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
