"""Change feed tasks: thin (call the delivery service, reschedule)."""

from __future__ import annotations

from celery import shared_task

from compliance.feed.services.delivery import feed_deliver
from compliance.feed.services.notices import erasure_notices_purge
from compliance.tasking import RegionalTask


@shared_task(base=RegionalTask, name="feed.deliver")
def deliver(*, region: str, sweep: bool = False) -> dict:
    """Deliver the region's pending changes to its webhooks.

    Sent on commit of every transaction that writes the outbox, by the beat sweep and when a
    worker starts. After a failed request it sends itself again after the back-off delay; when
    a sweep finds another run's lease (perhaps of a killed worker), it comes back when the
    lease expires. A sweep also removes the erasure notices every recipient has had
    (``erasure_notices_purge``).
    """
    outcomes = feed_deliver(region=region)
    if sweep:
        erasure_notices_purge(region=region)
    delays = [o.retry_in for o in outcomes.values() if o.retry_in is not None]
    if sweep:
        delays += [o.busy_for + 0.1 for o in outcomes.values() if o.busy_for is not None]
    if any(o.more for o in outcomes.values()):
        delays.append(0)
    if delays:
        deliver.apply_async(kwargs={"region": region, "sweep": sweep}, countdown=min(delays))
    return {str(pk): o.delivered for pk, o in outcomes.items()}
