"""Beat entries of the segments app."""

from celery.schedules import crontab

BEAT_SCHEDULE = {
    "segments-pause-overdue": {
        "task": "segments.pause_overdue_segments",
        "schedule": crontab(hour=3, minute=30),
    },
}
