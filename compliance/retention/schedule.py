"""Beat entries of retention: each region's rules, daily, on the region's queue."""

from compliance.conf import compliance_settings

BEAT_SCHEDULE = {
    f"retention-enforce-{region}": {
        "task": "retention.enforce",
        "schedule": 24 * 3600.0,
        "kwargs": {"region": region},
    }
    for region in compliance_settings.REGIONS
}
