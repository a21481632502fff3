"""The runtime database role: created and granted by the owner (``manage.py db_roles``).

The owner runs migrations and owns every table and guard function. The runtime role, which
the web and the workers connect as (``DATABASE_URL*``), may read every table and insert,
update and delete where the application needs to, but:

* audit entries, checkpoints, consent events, memberships, the destroyed-keys ledger: SELECT
  and INSERT only (no UPDATE, DELETE, TRUNCATE);
* the chain head, ``django_migrations`` and the guard settings: SELECT only;
* the guards' own bookkeeping (permits, pending membership changes): nothing;
* the guard functions of ``compliance.db_guards.DEFINER_FUNCTIONS``: EXECUTE (revoked from
  PUBLIC), the only way to the privileged writes.

Run it again after every ``migrate_all`` (new tables get the grants): it is idempotent.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from django.db import connections

from compliance.db_guards import (
    APPEND_ONLY_TABLES,
    DEFINER_FUNCTIONS,
    PRIVATE_TABLES,
    READ_ONLY_TABLES,
    SETTING_TABLE,
    schema_of,
)
from compliance.errors import InternalError

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class DbRolesError(InternalError):
    """The roles cannot be set as asked (message names the fix)."""


def db_roles_apply(
    *,
    using: str,
    app_role: str,
    password: str | None = None,
    audit_min_days: int,
    retention_floor_days: int,
) -> list[str]:
    """Create ``app_role`` if missing and set its grants on database ``using`` (connected as the
    owner); store the guards' floors. Returns what was done, one line each."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        raise DbRolesError(
            f"database {using!r} is {connection.vendor}: roles exist on PostgreSQL only "
            "(the embedded SQLite default has no roles; see docs/audit.md)"
        )
    if not ROLE_NAME.match(app_role):
        raise DbRolesError(
            f"--app-role {app_role!r}: use lower-case letters, digits and _ (a PostgreSQL name)"
        )
    role = connection.ops.quote_name(app_role)
    schema = schema_of(connection)
    done: list[str] = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_database()")
        owner, database = cursor.fetchone()
        if owner == app_role:
            raise DbRolesError(
                f"connected as {owner!r}: run db_roles as the owner (the role that ran "
                "migrate_all), not as the runtime role"
            )
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [app_role])
        row = cursor.fetchone()
        if row is None:
            cursor.execute(
                f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION"
            )
            done.append(f"created role {app_role}")
        elif row[0]:
            raise DbRolesError(
                f"role {app_role!r} is a superuser: a superuser passes every guard; "
                "use another name or ALTER ROLE ... NOSUPERUSER first"
            )
        if password:
            cursor.execute(f"ALTER ROLE {role} PASSWORD %s", [password])
            done.append("set its password")
        tables = _tables(cursor)
        cursor.execute(f"GRANT CONNECT ON DATABASE {connection.ops.quote_name(database)} TO {role}")
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
        done.append(
            f"granted {app_role} read on {len(tables)} tables, write where the application "
            f"writes; append-only: {', '.join(_present(APPEND_ONLY_TABLES, tables)) or '-'}"
        )
        if SETTING_TABLE in tables:
            for key, value in (
                ("audit_min_days", audit_min_days),
                ("retention_floor_days", retention_floor_days),
            ):
                cursor.execute(
                    f"INSERT INTO {SETTING_TABLE} VALUES (%s, %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    [key, str(value)],
                )
            done.append(
                f"guard floors: audit entries kept {audit_min_days} days, consent events and "
                f"closed stays {retention_floor_days} days"
            )
    return done


def _tables(cursor) -> set[str]:
    cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    return {name for (name,) in cursor.fetchall()}


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


def password_from_env(name: str | None) -> str | None:
    if not name:
        return None
    value = os.environ.get(name)
    if not value:
        raise DbRolesError(f"--password-env {name}: the variable is not set or empty")
    return value
