"""Removing erasure notices once every recipient has had them.

An erasure keeps exactly one kind of outbox row of the erased person: the *erasure notices*
(``ERASURE_NOTICE``: ``retract`` changes with reason ``erasure``, holding the random subject
id, the segment key, kind and reason; no identifier), so that webhooks and pull consumers learn
of the erasure (GDPR Art. 17(2)/19). ``erasure_notices_purge`` deletes a notice of a region
when both hold:

* it is older than ``COMPLIANCE_FEED_ERASURE_NOTICE_TTL_DAYS`` (default 30; the window pull
  consumers have to read it), and
* no active subscription of the region still has it pending: every subscription that would
  receive it (event types include ``retract``, its segment and arm filters match, created
  before the notice) has its cursor at or past it. A subscription whose receiver keeps failing therefore
  keeps the notice until it is delivered (or the subscription is deactivated).

The sweep (``feed.deliver`` with ``sweep=True``, every ``COMPLIANCE_FEED_SWEEP_SECONDS``) calls
it. A purge that removes rows appends one ``RETENTION_APPLIED`` event to the region's chain
(category ``erasure_notices``, counts only).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from compliance.audit.services.append import Actor
from compliance.feed.conf import feed_settings
from compliance.feed.models import ERASURE_NOTICE, Change, ChangeKind, DeliveryState
from compliance.feed.selectors.changes import arm_filter
from compliance.feed.selectors.subscriptions import subscriptions_for_region
from compliance.regions import region_alias
from compliance.retention.services.audit import retention_applied_append, retention_payload

SYSTEM = Actor.system("feed")
#: notices removed per call at most (the next sweep takes the rest)
PURGE_BATCH = 10_000


def _still_pending(alias: str, region: str) -> Q | None:
    """Notices that some active subscription of ``region`` has not received yet."""
    subscriptions = [
        s for s in subscriptions_for_region(region=region) if ChangeKind.RETRACT in s.event_types
    ]
    if not subscriptions:
        return None
    cursors = dict(
        DeliveryState.objects.using(alias)
        .filter(subscription_id__in=[s.pk for s in subscriptions])
        .values_list("subscription_id", "cursor_id")
    )
    pending = Q(pk__in=[])
    for sub in subscriptions:
        mine = Q(id__gt=cursors.get(sub.pk, 0), occurred_at__gte=sub.created_at)
        if sub.segments:
            mine &= Q(segment_key__in=list(sub.segments))
        arms = arm_filter(arm=sub.arm)
        if arms is not None:
            mine &= arms
        pending |= mine
    return pending


def erasure_notices(*, region: str):
    """Every erasure notice of ``region`` (a queryset)."""
    return Change.objects.using(region_alias(region=region)).filter(**ERASURE_NOTICE)


def erasure_notices_purge(
    *, region: str, now: datetime | None = None, actor: Actor = SYSTEM
) -> int:
    """Delete the erasure notices of ``region`` that every recipient has had (see the module
    docstring); returns how many. Audited (``RETENTION_APPLIED``) when any go."""
    alias = region_alias(region=region)
    now = now or timezone.now()
    days = feed_settings.ERASURE_NOTICE_TTL_DAYS
    days = int(days) if float(days).is_integer() else days
    cutoff = now - timedelta(days=days)
    with transaction.atomic(using=alias):
        due = erasure_notices(region=region).filter(occurred_at__lte=cutoff)
        pending = _still_pending(alias, region)
        if pending is not None:
            due = due.exclude(pending)
        pks = list(due.values_list("pk", flat=True)[:PURGE_BATCH])
        if not pks:
            return 0
        removed, _ = Change.objects.using(alias).filter(pk__in=pks).delete()
        retention_applied_append(
            using=alias,
            actor=actor,
            object_type="feed_outbox",
            object_id=region,
            payload=retention_payload(
                category="erasure_notices",
                max_age_days=days,
                cutoff=cutoff,
                removed={Change._meta.label: removed},
            ),
        )
    return removed
