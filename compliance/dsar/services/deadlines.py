"""Deadlines by regulation: GDPR and UK GDPR one month (+2 months), CCPA/CPRA 45 days (+45)."""

from __future__ import annotations

from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta

from compliance.dsar.models import Regulation


def due_at_for(*, regulation: str, received_at: datetime) -> datetime:
    """When a request received at ``received_at`` is due (calendar month for GDPR)."""
    if regulation == Regulation.CCPA:
        return received_at + timedelta(days=45)
    return received_at + relativedelta(months=1)


def extended_due_at(*, regulation: str, due_at: datetime) -> datetime:
    """The due date after the one extension the regulation allows."""
    if regulation == Regulation.CCPA:
        return due_at + timedelta(days=45)
    return due_at + relativedelta(months=2)
