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

The SQL lives in ``compliance.db.audit_triggers``; the audit migrations import from here.
"""

from __future__ import annotations

from django.conf import settings
from django.core import mail

from compliance.db.audit_triggers import (
    PROTECTED_TABLES,
    maintenance_for_test_database,
    trigger_names,
    triggers_drop,
    triggers_install,
    triggers_problems,
)

__all__ = [  # the names the audit migrations, checks and tests import from here
    "PROTECTED_TABLES",
    "in_test_environment",
    "maintenance_for_test_database",
    "trigger_names",
    "triggers_drop",
    "triggers_install",
    "triggers_problems",
]


def in_test_environment() -> bool:
    """Whether Django's test environment is set up: ``setup_test_environment`` switches e-mail
    to the in-memory backend and gives ``django.core.mail`` its ``outbox`` (removed again by
    ``teardown_test_environment``). Quirk: a process configured with the in-memory backend
    that has already sent mail looks the same; migrate production databases from
    ``migrate_all``, which sends none."""
    return (
        hasattr(mail, "outbox")
        and settings.EMAIL_BACKEND == "django.core.mail.backends.locmem.EmailBackend"
    )
