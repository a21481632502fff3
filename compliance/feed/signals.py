"""When a worker starts, sweep the feed of its regions: deliveries a killed worker left behind
are picked up at once instead of at the next beat sweep."""

from __future__ import annotations

from celery.signals import worker_ready

from compliance.conf import compliance_settings
from compliance.feed.tasks import deliver


def _consumed_queues(sender) -> set[str]:
    try:
        return {queue.name for queue in sender.consumer.task_consumer.queues}
    except AttributeError:
        return set()


@worker_ready.connect
def _sweep_on_start(sender=None, **kwargs) -> None:
    queues = _consumed_queues(sender)
    allowed = compliance_settings.WORKER_REGIONS
    for region in compliance_settings.REGIONS:
        if allowed and region not in allowed:
            continue
        if queues and f"compliance.{region}" not in queues:
            continue
        deliver.apply_async(kwargs={"region": region, "sweep": True})
