"""Gauges read from the databases when ``/metrics`` is scraped (nothing is kept in between).

Per region database: DSAR requests by status and the open ones past their deadline, the feed
lag of each active subscription. Per database (control and regions): the audit chain's length
and the seconds since its last signed (and witnessed) checkpoint. A database that does not
answer is ``compliance_database_scrape_ok{database} 0`` and its gauges are left out; no other
detail is exposed. Every query is a small aggregate through the ORM.
"""

from __future__ import annotations

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Max, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from compliance.audit.models import AuditChainHead, AuditCheckpoint
from compliance.dsar.models import TERMINAL_STATUSES, PrivacyRequest
from compliance.feed.models import Change, DeliveryState, Subscription
from compliance.regions import region_alias, regions


def _families() -> dict[str, GaugeMetricFamily]:
    g = GaugeMetricFamily
    return {
        "ok": g(
            "compliance_database_scrape_ok",
            "1 when the database answered the scrape.",
            labels=["database"],
        ),
        "dsar": g(
            "compliance_dsar_requests",
            "Data subject requests by region and status.",
            labels=["region", "status"],
        ),
        "overdue": g(
            "compliance_dsar_overdue_requests",
            "Open requests past their deadline.",
            labels=["region"],
        ),
        "chain": g(
            "compliance_audit_chain_length", "Entries in the audit chain.", labels=["database"]
        ),
        "checkpoint": g(
            "compliance_audit_checkpoint_age_seconds",
            "Seconds since the chain's last signed and witnessed checkpoint (absent: none yet).",
            labels=["database"],
        ),
        "lag": g(
            "compliance_feed_lag_changes",
            "Changes of the region after the subscription's cursor (its filters not applied).",
            labels=["subscription", "region"],
        ),
        "lag_seconds": g(
            "compliance_feed_lag_seconds",
            "Age of the oldest change after the subscription's cursor (0: caught up).",
            labels=["subscription", "region"],
        ),
    }


def _audit(*, alias: str, families: dict, now) -> None:
    head = AuditChainHead.objects.using(alias).filter(chain_id=alias).first()
    families["chain"].add_metric([alias], head.size if head else 0)
    last = (
        AuditCheckpoint.objects.using(alias).filter(chain_id=alias).aggregate(at=Max("signed_at"))
    )
    if last["at"] is not None:
        families["checkpoint"].add_metric([alias], (now - last["at"]).total_seconds())


def _dsar(*, region: str, alias: str, families: dict, now) -> None:
    requests = PrivacyRequest.objects.using(alias)
    for row in requests.values("status").annotate(n=Count("id")).order_by("status"):
        families["dsar"].add_metric([region, row["status"]], row["n"])
    overdue = requests.exclude(status__in=TERMINAL_STATUSES).filter(due_at__lt=now).count()
    families["overdue"].add_metric([region], overdue)


def _feed(*, region: str, alias: str, subscriptions: list, families: dict, now) -> None:
    latest = Change.objects.using(alias).aggregate(id=Max("id"))["id"] or 0
    cursors = dict(DeliveryState.objects.using(alias).values_list("subscription_id", "cursor_id"))
    for subscription in subscriptions:
        if subscription.regions and region not in subscription.regions:
            continue
        cursor = cursors.get(subscription.pk, 0)
        families["lag"].add_metric([subscription.name, region], max(latest - cursor, 0))
        oldest = None
        if latest > cursor:
            oldest = (
                Change.objects.using(alias)
                .filter(id__gt=cursor)
                .aggregate(at=Min("occurred_at"))["at"]
            )
        age = (now - oldest).total_seconds() if oldest else 0.0
        families["lag_seconds"].add_metric([subscription.name, region], max(age, 0.0))


class DatabaseCollector(Collector):
    """Registered on the registry that ``/metrics`` renders; reads each database per scrape."""

    def collect(self):
        families = _families()
        now = timezone.now()
        try:
            subscriptions = list(Subscription.objects.using("default").filter(is_active=True))
        except DatabaseError:
            subscriptions = []
        region_of = {region_alias(region=r): r for r in regions()}
        for alias in settings.DATABASES:
            try:
                _audit(alias=alias, families=families, now=now)
                if alias in region_of:
                    region = region_of[alias]
                    _dsar(region=region, alias=alias, families=families, now=now)
                    _feed(
                        region=region,
                        alias=alias,
                        subscriptions=subscriptions,
                        families=families,
                        now=now,
                    )
            except DatabaseError:
                families["ok"].add_metric([alias], 0)
            else:
                families["ok"].add_metric([alias], 1)
        yield from families.values()
