"""Database-level protection of the audit tables on PostgreSQL.

Triggers on ``audit_auditevent`` and ``audit_auditcheckpoint`` refuse every UPDATE and DELETE
(row level) and every TRUNCATE (statement level). The only way to write is INSERT, which is
what ``audit_append`` and ``checkpoint_sign`` do; the one exception is DELETE of entries under
the ``retention`` write path (a prefix up to a signed checkpoint, ``compliance.retention``). A table owner can still disable the triggers;
that is why verification (``audit_verify``) against signed checkpoints is the real guarantee,
and why the system check ``audit.W001`` warns when a trigger is missing or disabled.

Test databases only: Django's test runner empties tables between transactional tests with
TRUNCATE. When the migration runs inside a Django test environment (``setup_test_environment``
was called, e.g. by pytest-django or ``bench.bench_databases``) it also sets the database
default ``compliance.audit_maintenance = on``, which lets TRUNCATE (never UPDATE or DELETE)
through. Production databases are never migrated inside a test environment; setting that
variable needs the same privilege as disabling the triggers, and the system check reports it.

SQLite (embedded default) has no such triggers: there, the append service is the only writer
in the code base and ``audit_verify`` detects any change made behind its back.
"""

from __future__ import annotations

from django.db import connections

PROTECTED_TABLES = ("audit_auditevent", "audit_auditcheckpoint")
MAINTENANCE_SETTING = "compliance.audit_maintenance"

FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger AS $$
BEGIN
    -- retention may drop a prefix of the chain up to a signed checkpoint (see docs/retention.md)
    IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'audit_auditevent'
       AND coalesce(current_setting('compliance.write_path', true), '') = 'retention' THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'TRUNCATE'
       AND coalesce(current_setting('{MAINTENANCE_SETTING}', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION USING
        MESSAGE = 'audit log is append-only: ' || TG_OP || ' on ' || TG_TABLE_NAME || ' refused',
        ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def trigger_names(table: str) -> tuple[str, str]:
    return (f"{table}_no_update_delete", f"{table}_no_truncate")


def triggers_install(*, using: str) -> None:
    """Create (or replace) the refusing triggers on ``using``; no-op unless PostgreSQL."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(FUNCTION_SQL)
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
    """Let the test runner TRUNCATE audit tables (database default + this session)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        name = cursor.fetchone()[0]
        quoted = connection.ops.quote_name(name)
        cursor.execute(f"ALTER DATABASE {quoted} SET {MAINTENANCE_SETTING} = 'on'")
        cursor.execute("SELECT set_config(%s, 'on', false)", [MAINTENANCE_SETTING])


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
