"""Retention task: thin (run the region's rules)."""

from __future__ import annotations

from celery import shared_task

from compliance.retention.services.enforce import retention_enforce
from compliance.tasking import RegionalTask


@shared_task(base=RegionalTask, name="retention.enforce")
def enforce(*, region: str) -> dict:
    """Enforce every active retention rule of ``region`` (idempotent: a rerun removes only
    what is still too old)."""
    return {f"{o.category}": o.refused or o.total for o in retention_enforce(region=region)}
