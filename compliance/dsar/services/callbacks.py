"""Status callbacks to a client's ``callback_url``, signed with its ``callback_secret``.

Headers: ``X-Compliance-Timestamp`` (Unix seconds) and ``X-Compliance-Signature``
(``sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" under the client's callback secret>``).
Receivers recompute the HMAC, compare in constant time and refuse old timestamps. The body has
no personal data: request id, type, status, time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.request

from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, AuditEntry, audit_append
from compliance.dsar.models import PrivacyRequest
from compliance.models import ApiClient

TIMEOUT = 10
SYSTEM = Actor.system("dsar-callback")


class CallbackError(RuntimeError):
    """The receiver did not answer 2xx (retried with backoff by the task)."""


def callback_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def callback_deliver(*, region: str, request_id: str, status: str) -> int | None:
    """POST the status to the request's callback URL; returns the HTTP status (``None`` if the
    request has no callback). Raises ``CallbackError`` on failure (the task retries)."""
    request = PrivacyRequest.objects.using(region).get(pk=request_id)
    if not request.callback_url or request.client_id is None:
        return None
    client = ApiClient.objects.filter(pk=request.client_id).first()
    if client is None or not client.callback_secret:
        return None
    body = json.dumps(
        {
            "id": str(request.pk),
            "type": request.type,
            "status": status,
            "current_status": request.status,
            "sent_at": timezone.now().isoformat(),
        },
        separators=(",", ":"),
    ).encode()
    timestamp = str(int(time.time()))
    http = urllib.request.Request(
        request.callback_url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Compliance-Timestamp": timestamp,
            "X-Compliance-Signature": callback_signature(
                secret=client.callback_secret, timestamp=timestamp, body=body
            ),
        },
    )
    try:
        with urllib.request.urlopen(http, timeout=TIMEOUT) as response:  # noqa: S310
            code = response.status
    except Exception as exc:  # URLError, HTTPError, timeouts
        raise CallbackError(f"callback failed: {exc.__class__.__name__}") from exc
    audit_append(
        using=region,
        entries=[
            AuditEntry(
                code=AuditCode.CALLBACK_SENT,
                actor=SYSTEM,
                object_type="privacy_request",
                object_id=str(request.pk),
                payload={"status": status, "http_status": code},
            )
        ],
    )
    return code
