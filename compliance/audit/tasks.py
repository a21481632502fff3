"""Celery tasks of the audit log: sign a checkpoint of each chain regularly."""

from __future__ import annotations

from celery import shared_task

from compliance.audit.services.checkpoints import checkpoint_sign
from compliance.regions import region_alias
from compliance.tasking import RegionalTask


@shared_task(base=RegionalTask, name="audit.checkpoint_sign")
def checkpoint_sign_region(*, region: str) -> int | None:
    """Sign the head of ``region``'s chain (runs on that region's queue)."""
    checkpoint = checkpoint_sign(using=region_alias(region=region))
    return checkpoint.size if checkpoint else None


@shared_task(name="audit.checkpoint_sign_control", acks_late=True, reject_on_worker_lost=True)
def checkpoint_sign_control() -> int | None:
    """Sign the head of the control chain (``default``; runs on ``compliance.control``)."""
    checkpoint = checkpoint_sign(using="default")
    return checkpoint.size if checkpoint else None
