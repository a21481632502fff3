"""Beat entries of the core app: a heartbeat per region (shows each region has live workers)."""

from compliance.conf import compliance_settings

BEAT_SCHEDULE = {
    f"worker-heartbeat-{region}": {
        "task": "compliance.worker_heartbeat",
        "schedule": 300.0,
        "kwargs": {"region": region},
    }
    for region in compliance_settings.REGIONS
}
