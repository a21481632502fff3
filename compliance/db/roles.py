"""The runtime role's grants and the role a connection uses (PostgreSQL; SQLite has no roles):
the SQL behind ``db_roles`` and the ``compliance.W010`` check."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections

from compliance.db.guards_sql import (
    APPEND_ONLY_TABLES,
    DEFINER_FUNCTIONS,
    PRIVATE_TABLES,
    READ_ONLY_TABLES,
    SETTING_TABLE,
    schema_of,
)
from compliance.db.vendor import is_postgresql


def roles_supported(*, using: str) -> bool:
    """Whether database ``using`` has roles at all (PostgreSQL)."""
    return is_postgresql(using)


def connected_role(*, using: str) -> tuple[str, bool, list[str]] | None:
    """``(role, is superuser, append-only tables it owns)`` of the connection of ``using``;
    ``None`` where there are no roles."""
    if not is_postgresql(using):
        return None
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
        user, superuser = cursor.fetchone()
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tableowner = current_user AND tablename = ANY(%s)",
            [list(APPEND_ONLY_TABLES)],
        )
        owned = sorted(name for (name,) in cursor.fetchall())
    return user, superuser, owned


def owner_and_role(*, using: str, app_role: str) -> tuple[str, bool | None]:
    """``(the connected role, whether ``app_role`` is a superuser)``; ``None`` for a role that
    does not exist yet."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT current_user")
        owner = cursor.fetchone()[0]
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [app_role])
        row = cursor.fetchone()
    return owner, None if row is None else row[0]


def role_create(*, using: str, app_role: str) -> None:
    """A plain login role (no superuser, database or role creation, replication)."""
    role = connections[using].ops.quote_name(app_role)
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION"
        )


def role_password(*, using: str, app_role: str, password: str) -> None:
    role = connections[using].ops.quote_name(app_role)
    with connections[using].cursor() as cursor:
        cursor.execute(f"ALTER ROLE {role} PASSWORD %s", [password])


def role_grants(*, using: str, app_role: str) -> tuple[set[str], list[str]]:
    """Grant ``app_role`` what the application needs on ``using`` and no more: read every
    table, write where the application writes, append only where history lives, nothing on
    the guards' bookkeeping, EXECUTE on the guard functions. Returns ``(tables, append-only
    tables present)``."""
    connection = connections[using]
    role = connection.ops.quote_name(app_role)
    schema = schema_of(connection)
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        database = connection.ops.quote_name(cursor.fetchone()[0])
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        tables = {name for (name,) in cursor.fetchall()}
        cursor.execute(f"GRANT CONNECT ON DATABASE {database} TO {role}")
        cursor.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        cursor.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}")
        cursor.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}"
        )
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}")
        for name in _present(APPEND_ONLY_TABLES, tables):
            cursor.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {name} FROM {role}")
        for name in _present(READ_ONLY_TABLES, tables):
            cursor.execute(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {name} FROM {role}")
        for name in _present(PRIVATE_TABLES, tables):
            cursor.execute(f"REVOKE ALL ON {name} FROM {role}")
        for signature in _functions(cursor, DEFINER_FUNCTIONS):
            cursor.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
            cursor.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {role}")
    return tables, _present(APPEND_ONLY_TABLES, tables)


def guard_settings_store(*, using: str, values: dict[str, int]) -> bool:
    """Store the guards' floors (owner-only table); ``False`` where the table is missing."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = %s",
            [SETTING_TABLE],
        )
        if cursor.fetchone() is None:
            return False
        for key, value in values.items():
            cursor.execute(
                f"INSERT INTO {SETTING_TABLE} VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                [key, str(value)],
            )
    return True


def _present(names: Sequence[str], tables: set[str]) -> list[str]:
    return [name for name in names if name in tables]


def _functions(cursor, signatures: Sequence[str]) -> list[str]:
    """The guard functions that exist in this database (the regional ones are not on
    ``default``)."""
    present = []
    for signature in signatures:
        cursor.execute("SELECT to_regprocedure(%s)", [signature])
        if cursor.fetchone()[0] is not None:
            present.append(signature)
    return present
