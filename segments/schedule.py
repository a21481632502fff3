"""Beat entries of the segments app: the daily overdue-review pause (control queue) and the
hourly lift aggregates of every measured segment, one entry per region (that region's queue)."""

from celery.schedules import crontab

from compliance.conf import compliance_settings

BEAT_SCHEDULE = {
    "segments-pause-overdue": {
        "task": "segments.pause_overdue_segments",
        "schedule": crontab(hour=3, minute=30),
    },
}
BEAT_SCHEDULE.update(
    {
        f"segments-lift-{region}": {
            "task": "segments.lift_compute",
            "schedule": crontab(minute=17),  # hourly, off the top of the hour
            "kwargs": {"region": region},
        }
        for region in compliance_settings.REGIONS
    }
)
