"""Beat entries of the audit log: a signed, witnessed checkpoint of every chain every
``COMPLIANCE_AUDIT_CHECKPOINT_SECONDS`` (default 60); the task skips chains that did not move.
A region's entry runs on that region's queue (``region=``), the control chain's on
``compliance.control``."""

from compliance.conf import compliance_settings

CHECKPOINT_EVERY = compliance_settings.AUDIT_CHECKPOINT_SECONDS

BEAT_SCHEDULE = {
    f"audit-checkpoint-{region}": {
        "task": "audit.checkpoint_sign",
        "schedule": CHECKPOINT_EVERY,
        "kwargs": {"region": region},
    }
    for region in compliance_settings.REGIONS
}
BEAT_SCHEDULE["audit-checkpoint-control"] = {
    "task": "audit.checkpoint_sign_control",
    "schedule": CHECKPOINT_EVERY,
}
