"""The one write of the officer pages: recording that someone looked at a person's data.

Approvals, rejections, extensions and segment governance go through their own apps' services
(``compliance.dsar.services.requests``, ``segments.services.definitions``), which audit them.
"""

from __future__ import annotations

from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, AuditEntry, audit_append
from compliance.models import Subject
from compliance.regions import region_alias


def personal_data_viewed(*, subject: Subject, region: str, actor: Actor, view: str) -> None:
    """Append ``PERSONAL_DATA_VIEWED`` to the region's chain: the subject only as its audit
    token, the payload says which page showed what (never the data itself)."""
    audit_append(
        using=region_alias(region=region),
        entries=[
            AuditEntry(
                code=AuditCode.PERSONAL_DATA_VIEWED,
                actor=actor,
                subject_token=subject.audit_token,
                object_type="subject",
                payload={
                    "view": view,
                    "shown": ["identifiers", "consent", "memberships", "requests"],
                },
            )
        ],
    )
