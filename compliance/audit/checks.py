"""System check: the append-only triggers exist and are enabled on every PostgreSQL alias."""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.db import DatabaseError, connections

from compliance.audit.protection import triggers_problems


@checks.register()
def check_audit_triggers(app_configs=None, databases=None, **kwargs):
    warnings = []
    for alias in settings.DATABASES:
        if connections[alias].vendor != "postgresql":
            continue
        try:
            problems = triggers_problems(using=alias)
        except DatabaseError:
            continue  # not reachable or not migrated yet: nothing to say about its triggers
        for problem in problems:
            warnings.append(
                checks.Warning(
                    f"audit log of database {alias!r} is not protected: {problem}.",
                    hint="Run `python manage.py migrate_all` (it installs the triggers) or "
                    "re-enable them: ALTER TABLE audit_auditevent ENABLE TRIGGER ALL. "
                    "Then run `python manage.py audit_verify`.",
                    id="audit.W001",
                )
            )
    return warnings
