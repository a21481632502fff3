"""Segments Celery tasks: thin (call a service)."""

from __future__ import annotations

import logging

from celery import shared_task

from compliance.conf import compliance_settings
from segments.services.definitions import segments_pause_overdue

logger = logging.getLogger(__name__)


@shared_task(name="segments.pause_overdue_segments")
def pause_overdue_segments() -> list[str]:
    """Daily: pause active segments past their review date if COMPLIANCE_SEGMENTS_PAUSE_OVERDUE.

    Segments are global, so this runs on the control queue (no ``region``). Idempotent: a
    paused segment is not active any more and is skipped next time.
    """
    if not compliance_settings.SEGMENTS_PAUSE_OVERDUE:
        return []
    paused = segments_pause_overdue()
    if paused:
        logger.info("paused %d segment(s) past their review date: %s", len(paused), paused)
    return paused
