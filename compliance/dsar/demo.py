"""Demo data of the dsar app: an access request for a demo EU person (idempotent)."""

from __future__ import annotations

from compliance.dsar.models import PrivacyRequest
from compliance.dsar.services.requests import request_open

DEMO_KEY = "demo-access-1"


def load(*, actor, stdout) -> None:
    if PrivacyRequest.objects.using("eu").filter(idempotency_key=DEMO_KEY).exists():
        stdout.write("demo privacy requests: present")
        return
    result = request_open(
        type="access",
        regulation="gdpr",
        identifiers=[{"type": "email", "value": "amelie.martin@example.fr"}],
        verification_method="account_login",
        jurisdiction="FR",
        idempotency_key=DEMO_KEY,
        actor=actor,
    )
    stdout.write(f"demo privacy request: {result.request.type} {result.request.status}")
