"""The ``RETENTION_APPLIED`` (801) entry every removal by age writes to its database's chain
(retention rules, the feed's erasure-notice purge): the rule's terms and counts per table,
never personal data."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from compliance.audit.codes import AuditCode
from compliance.audit.hashing import format_time
from compliance.audit.services.append import Actor, AuditEntry, audit_append


def retention_payload(
    *,
    category: str,
    max_age_days,
    cutoff: datetime,
    removed: Mapping[str, int],
    extra: Mapping | None = None,
) -> dict:
    """The payload of a removal: category, maximum age, cut-off, rows removed per table and
    their total, then ``extra`` (counts, prune anchors)."""
    return {
        "category": category,
        "max_age_days": max_age_days,
        "cutoff": format_time(cutoff),
        "removed": dict(removed),
        "total": sum(removed.values()),
        **(extra or {}),
    }


def retention_applied_append(
    *, using: str, actor: Actor, object_type: str, object_id: str, payload: dict
) -> None:
    """Append one ``RETENTION_APPLIED`` entry about ``object_type``/``object_id`` to the chain
    of ``using``, in the caller's transaction."""
    audit_append(
        using=using,
        entries=[
            AuditEntry(
                code=AuditCode.RETENTION_APPLIED,
                actor=actor,
                object_type=object_type,
                object_id=object_id,
                payload=payload,
            )
        ],
    )
