"""Beat entries of the audit log: a signed checkpoint of every chain every 10 minutes."""

from django.conf import settings

CHECKPOINT_EVERY = 600.0

BEAT_SCHEDULE = {
    f"audit-checkpoint-{region}": {
        "task": "audit.checkpoint_sign",
        "schedule": CHECKPOINT_EVERY,
        "kwargs": {"region": region},
    }
    for region in settings.COMPLIANCE_REGIONS
}
BEAT_SCHEDULE["audit-checkpoint-control"] = {
    "task": "audit.checkpoint_sign_control",
    "schedule": CHECKPOINT_EVERY,
}
