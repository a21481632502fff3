"""API client changes (audited in the control chain)."""

from __future__ import annotations

from django.db import transaction

from compliance.api.scopes import OFFICER_SCOPES, SCOPES
from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, AuditEntry, audit_append
from compliance.errors import InputError
from compliance.models import ApiClient


class ApiClientError(InputError):
    pass


def officer_scopes_refusal(*, scopes, user) -> str | None:
    """Why ``user`` may not hold ``scopes`` (``None`` if it may): approval scopes act on a
    person's behalf and need an active staff user in the Privacy officer group."""
    # order: importing roles connects its post_migrate receiver, which must come after auth's
    # (permissions first); this module is imported before the apps are ready
    from compliance.roles import PRIVACY_OFFICER

    wanted = sorted(OFFICER_SCOPES.intersection(scopes))
    if not wanted:
        return None
    if user is not None and user.is_active and user.is_staff:
        if user.groups.filter(name=PRIVACY_OFFICER).exists():
            return None
    who = f"user {user.get_username()!r} is not" if user else "no user given; the token must act as"
    return (
        f"scopes {', '.join(wanted)} approve on a person's behalf: {who} an active staff user "
        f"in the '{PRIVACY_OFFICER}' group"
    )


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
                    payload={
                        "created": created,
                        "scopes": list(client.scopes),
                        "active": client.is_active,
                    },
                )
            ],
        )
    return client
