"""Recording that someone looked at the evidence report."""

from __future__ import annotations

from datetime import datetime

from compliance.audit.codes import AuditCode
from compliance.audit.hashing import format_time
from compliance.audit.services.append import Actor, AuditEntry, audit_append


def evidence_report_viewed(*, actor: Actor, start: datetime, end: datetime) -> None:
    """Append ``EVIDENCE_REPORT_VIEWED`` (period in the payload) to the control chain."""
    audit_append(
        using="default",
        entries=[
            AuditEntry(
                code=AuditCode.EVIDENCE_REPORT_VIEWED,
                actor=actor,
                object_type="evidence_report",
                payload={"from": format_time(start), "to": format_time(end)},
            )
        ],
    )
