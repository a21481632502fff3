"""Auditing a change of global configuration (webhook subscriptions, retention rules, ...)."""

from __future__ import annotations

from collections.abc import Mapping

from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, AuditEntry, audit_append


def configuration_changed(
    *, actor: Actor, object_type: str, object_id: str, payload: Mapping
) -> None:
    """``CONFIGURATION_CHANGED`` for ``object_type``/``object_id`` in the control chain
    (``default``, where global configuration lives), in the caller's transaction."""
    audit_append(
        using="default",
        entries=[
            AuditEntry(
                code=AuditCode.CONFIGURATION_CHANGED,
                actor=actor,
                object_type=object_type,
                object_id=object_id,
                payload=payload,
            )
        ],
    )
