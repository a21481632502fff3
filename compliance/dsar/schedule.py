"""Beat entries of the dsar app, one per region: deadline flags and package expiry daily, the
stuck-request safety net every five minutes."""

from compliance.conf import compliance_settings

BEAT_SCHEDULE = {}
for _region in compliance_settings.REGIONS:
    BEAT_SCHEDULE.update(
        {
            f"dsar-flag-due-{_region}": {
                "task": "dsar.requests_flag_due",
                "schedule": 86400.0,
                "kwargs": {"region": _region},
            },
            f"dsar-packages-expire-{_region}": {
                "task": "dsar.packages_expire",
                "schedule": 86400.0,
                "kwargs": {"region": _region},
            },
            f"dsar-resume-stuck-{_region}": {
                "task": "dsar.requests_resume_stuck",
                "schedule": 300.0,
                "kwargs": {"region": _region, "stale_after": 600},
            },
        }
    )
