"""The runtime database role: created and granted by the owner (``manage.py db_roles``).

The owner runs migrations and owns every table and guard function. The runtime role, which
the web and the workers connect as (``DATABASE_URL*``), may read every table and insert,
update and delete where the application needs to, but:

* audit entries, checkpoints, consent events, memberships, the destroyed-keys ledger, the
  control database's suppression mirror: SELECT and INSERT only (no UPDATE, DELETE, TRUNCATE);
* the chain head, ``django_migrations`` and the guard settings: SELECT only;
* the guards' own bookkeeping (permits, pending membership changes): nothing;
* the guard functions of ``compliance.db_guards.DEFINER_FUNCTIONS``: EXECUTE (revoked from
  PUBLIC), the only way to the privileged writes.

The SQL is in ``compliance.db.roles``.

Run it again after every ``migrate_all`` (new tables get the grants): it is idempotent.
"""

from __future__ import annotations

import os
import re

from compliance.db import roles
from compliance.db.vendor import vendor_name
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
    if not roles.roles_supported(using=using):
        raise DbRolesError(
            f"database {using!r} is {vendor_name(using)}: roles exist on PostgreSQL only "
            "(the embedded SQLite default has no roles; see docs/audit.md)"
        )
    if not ROLE_NAME.match(app_role):
        raise DbRolesError(
            f"--app-role {app_role!r}: use lower-case letters, digits and _ (a PostgreSQL name)"
        )
    done: list[str] = []
    owner, superuser = roles.owner_and_role(using=using, app_role=app_role)
    if owner == app_role:
        raise DbRolesError(
            f"connected as {owner!r}: run db_roles as the owner (the role that ran "
            "migrate_all), not as the runtime role"
        )
    if superuser is None:
        roles.role_create(using=using, app_role=app_role)
        done.append(f"created role {app_role}")
    elif superuser:
        raise DbRolesError(
            f"role {app_role!r} is a superuser: a superuser passes every guard; "
            "use another name or ALTER ROLE ... NOSUPERUSER first"
        )
    if password:
        roles.role_password(using=using, app_role=app_role, password=password)
        done.append("set its password")
    tables, append_only = roles.role_grants(using=using, app_role=app_role)
    done.append(
        f"granted {app_role} read on {len(tables)} tables, write where the application "
        f"writes; append-only: {', '.join(append_only) or '-'}"
    )
    floors = {"audit_min_days": audit_min_days, "retention_floor_days": retention_floor_days}
    if roles.guard_settings_store(using=using, values=floors):
        done.append(
            f"guard floors: audit entries kept {audit_min_days} days, consent events and "
            f"closed stays {retention_floor_days} days"
        )
    return done


def password_from_env(name: str | None) -> str | None:
    if not name:
        return None
    value = os.environ.get(name)
    if not value:
        raise DbRolesError(f"--password-env {name}: the variable is not set or empty")
    return value
