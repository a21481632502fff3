"""Consent Celery tasks: thin wrappers around services, one region per task."""

from __future__ import annotations

from celery import shared_task

from compliance.audit.services.append import Actor
from compliance.consent.services.expiry import consent_expire_due
from compliance.tasking import RegionalTask


@shared_task(base=RegionalTask, name="consent.expire_due")
def consent_expire(*, region: str) -> int:
    """Record ``expired`` events for lapsed grants of ``region`` (idempotent)."""
    return consent_expire_due(region=region, actor=Actor.system("consent_expiry"))
