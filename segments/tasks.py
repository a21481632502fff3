"""Segments Celery tasks: thin (call a service)."""

from __future__ import annotations

import logging

from celery import shared_task

from compliance.conf import compliance_settings
from compliance.tasking import RegionalTask
from segments.services.definitions import segments_pause_overdue
from segments.services.lift import lift_compute_region

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


@shared_task(name="segments.lift_compute", base=RegionalTask)
def lift_compute(*, region: str, segment_key: str | None = None) -> dict[str, int]:
    """Per region (on that region's queue): recompute the lift aggregates of every measured
    segment from the region's stays and events; only aggregates leave the region. On the beat
    hourly per region (``segments.schedule``)."""
    runs = lift_compute_region(region=region, segment_key=segment_key)
    logger.info("lift computed for %d segment(s) in %s", len(runs), region)
    return {run.segment_key: run.stays for run in runs}
