"""Beat entries of the consent app: the daily expiry job, one per region."""

from celery.schedules import crontab

from compliance.conf import compliance_settings

BEAT_SCHEDULE = {
    f"consent-expire-{region}": {
        "task": "consent.expire_due",
        "schedule": crontab(hour=3, minute=15),
        "kwargs": {"region": region},
    }
    for region in compliance_settings.REGIONS
}
