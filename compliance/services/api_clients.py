"""API client changes (audited in the control chain)."""

from __future__ import annotations

from django.db import transaction

from compliance.api.scopes import SCOPES
from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, AuditEntry, audit_append
from compliance.models import ApiClient


class ApiClientError(ValueError):
    pass


def api_client_save(*, client: ApiClient, actor_user, created: bool) -> ApiClient:
    """Validate scopes, save the client and audit the change (API_CLIENT_CHANGED)."""
    unknown = [s for s in client.scopes if s not in SCOPES]
    if not isinstance(client.scopes, list) or unknown:
        raise ApiClientError(f"unknown scopes: {', '.join(map(str, unknown))}")
    with transaction.atomic(using="default"):
        client.save(using="default")
        audit_append(
            using="default",
            entries=[
                AuditEntry(
                    code=AuditCode.API_CLIENT_CHANGED,
                    actor=Actor.user(actor_user),
                    object_type="api_client",
                    object_id=str(client.pk),
                    payload={"created": created, "scopes": list(client.scopes),
                             "active": client.is_active},
                )
            ],
        )
    return client
