"""Beat entries of the segments app."""

from celery.schedules import crontab

from compliance.regions import regions

BEAT_SCHEDULE = {
    "segments-pause-overdue": {
        "task": "segments.pause_overdue_segments",
        "schedule": crontab(hour=3, minute=30),
    },
    **{
        f"segments-lift-{region}": {
            "task": "segments.lift_compute",
            "schedule": crontab(minute=17),
            "kwargs": {"region": region},
        }
        for region in regions()
    },
}
