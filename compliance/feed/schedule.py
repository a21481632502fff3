"""Beat entries of the change feed: a safety-net delivery sweep per region."""

from compliance.conf import compliance_settings
from compliance.feed.conf import feed_settings

BEAT_SCHEDULE = {
    f"feed-sweep-{region}": {
        "task": "feed.deliver",
        "schedule": feed_settings.SWEEP_SECONDS,
        "kwargs": {"region": region, "sweep": True},
    }
    for region in compliance_settings.REGIONS
}
