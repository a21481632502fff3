"""Roles on either database: ``db_roles`` names what it needs, ``compliance.W010`` speaks only
where there are roles. (The grants themselves: ``tests/audit/test_runtime_role.py``.)"""

from __future__ import annotations

import pytest
from django.db import connections

from compliance.checks import check_runtime_role
from compliance.services.db_roles import DbRolesError, db_roles_apply

pytestmark = pytest.mark.django_db(databases="__all__")


def test_db_roles_refuses_a_database_without_roles_and_checks_the_name():
    if connections["eu"].vendor == "sqlite":
        with pytest.raises(DbRolesError, match="is sqlite: roles exist on PostgreSQL only"):
            db_roles_apply(using="eu", app_role="app", audit_min_days=1, retention_floor_days=1)
        return
    with pytest.raises(DbRolesError, match="lower-case letters"):
        db_roles_apply(
            using="eu", app_role="Robert'); --", audit_min_days=1, retention_floor_days=1
        )


def test_runtime_role_check_names_the_owner_connection_on_postgresql(settings):
    """Tests connect as the owner (``postgres``, a superuser): W010 under production settings
    on every PostgreSQL alias, nothing on SQLite."""
    settings.DEBUG = True
    assert check_runtime_role() == []
    settings.DEBUG = False
    warned = {w.msg.split("'")[1] for w in check_runtime_role()}
    postgres = {alias for alias in settings.DATABASES if connections[alias].vendor == "postgresql"}
    assert warned == postgres
