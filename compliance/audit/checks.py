"""System checks: the append-only triggers exist and are enabled on every PostgreSQL alias; a
witness outside the database is configured (deploy)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core import checks
from django.db import DatabaseError

from compliance.audit.protection import triggers_problems
from compliance.conf import compliance_settings


@checks.register()
def check_audit_triggers(app_configs=None, databases=None, **kwargs):
    warnings = []
    for alias in settings.DATABASES:
        try:
            problems = triggers_problems(using=alias)  # none on SQLite: it has no triggers
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


@checks.register(checks.Tags.security, deploy=True)
def check_audit_witness(app_configs=None, **kwargs):
    """``check --deploy``: signed checkpoints should reach a witness outside the database."""
    directory = compliance_settings.AUDIT_WITNESS_DIR
    if compliance_settings.AUDIT_WITNESS_URL:
        return []
    if not directory:
        problem = "no audit witness is configured (COMPLIANCE_AUDIT_WITNESS_DIR is empty)"
    elif Path(directory).resolve().is_relative_to(Path(settings.VAR_DIR).resolve()):
        problem = f"the audit witness directory {directory} is inside COMPLIANCE_VAR_DIR"
    else:
        return []
    return [
        checks.Warning(
            f"{problem}: someone who controls the database can cut, rewrite or wipe the audit "
            "chains together with their checkpoints without audit_verify finding it.",
            hint="Set COMPLIANCE_AUDIT_WITNESS_DIR to storage the database hosts cannot change "
            "(another machine's mount, a WORM bucket synced from it) or "
            "COMPLIANCE_AUDIT_WITNESS_URL to an HTTP witness. See docs/audit.md.",
            id="audit.W003",
        )
    ]
