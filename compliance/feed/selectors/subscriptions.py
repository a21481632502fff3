"""Reading webhook subscriptions."""

from __future__ import annotations

from compliance.feed.models import Subscription


def subscriptions_for_region(*, region: str) -> list[Subscription]:
    """Active subscriptions that receive changes of ``region``."""
    return [
        s
        for s in Subscription.objects.filter(is_active=True).order_by("pk")
        if not s.regions or region in s.regions
    ]
