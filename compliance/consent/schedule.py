"""Beat entries of the consent app: the daily expiry job, one per region."""

from celery.schedules import crontab
from django.conf import settings

BEAT_SCHEDULE = {
    f"consent-expire-{region}": {
        "task": "consent.expire_due",
        "schedule": crontab(hour=3, minute=15),
        "kwargs": {"region": region},
    }
    for region in settings.COMPLIANCE_REGIONS
}
