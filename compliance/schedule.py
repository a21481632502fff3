"""Beat entries of the core app: a heartbeat per region (shows each region has live workers)."""

from django.conf import settings

BEAT_SCHEDULE = {
    f"worker-heartbeat-{region}": {
        "task": "compliance.worker_heartbeat",
        "schedule": 300.0,
        "kwargs": {"region": region},
    }
    for region in settings.COMPLIANCE_REGIONS
}
