"""Status callbacks to a client's ``callback_url``, signed with its ``callback_secret``.

Headers: ``X-Compliance-Event-Id`` (the same on every retry of one callback),
``X-Compliance-Attempt`` (1, 2, ...), ``X-Compliance-Timestamp`` (Unix seconds) and
``X-Compliance-Signature`` (``sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" under the
client's callback secret>``). Receivers recompute the HMAC, compare in constant time, refuse
old timestamps and deduplicate by the event id. The body has no personal data: event id,
attempt, request id, type, status, time.

Every try is recorded as a ``CallbackAttempt`` (status code or error, time; never the response
body). The URL is checked again before each try (``compliance.outbound``): one that now points
at a refused address is recorded and dropped, not retried.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
import uuid

from django.utils import timezone

from compliance.audit.codes import AuditCode
from compliance.audit.services.append import Actor, AuditEntry, audit_append
from compliance.dsar.models import CallbackAttempt, PrivacyRequest
from compliance.errors import InternalError
from compliance.models import ApiClient
from compliance.outbound import OutboundUrlError, outbound_opener, outbound_url_check
from compliance.regions import region_alias

TIMEOUT = 10
SYSTEM = Actor.system("dsar-callback")
_EVENT_NAMESPACE = uuid.UUID("6f1c3c53-2a55-4c1e-9a39-5c5b2f0e8d11")


class CallbackError(InternalError):
    """The receiver did not answer 2xx (retried with backoff by the task)."""


def callback_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def callback_event_id(*, request_id, status: str) -> uuid.UUID:
    """The callback's id: derived from the request and the status it announces, so every
    retry (and a task delivered twice) carries the same one."""
    return uuid.uuid5(_EVENT_NAMESPACE, f"{request_id}:{status}")


def _signed_post(
    *, url: str, secret: str, event_id, attempt: int, body: bytes
) -> tuple[int | None, str, int]:
    """POST ``body`` signed with ``secret``: (HTTP status or None, error, duration in ms)."""
    timestamp = str(int(time.time()))
    http = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Compliance-Event-Id": str(event_id),
            "X-Compliance-Attempt": str(attempt),
            "X-Compliance-Timestamp": timestamp,
            "X-Compliance-Signature": callback_signature(
                secret=secret, timestamp=timestamp, body=body
            ),
        },
    )
    began = time.perf_counter()
    code, error = None, ""
    try:
        with outbound_opener.open(http, timeout=TIMEOUT) as response:
            code = response.status
    except urllib.error.HTTPError as exc:
        code = exc.code
        exc.close()
    except Exception as exc:  # URLError, timeouts, refused connections
        error = f"{exc.__class__.__name__}: {getattr(exc, 'reason', exc)}"
    return code, error, int((time.perf_counter() - began) * 1000)


def callback_deliver(*, region: str, request_id: str, status: str) -> int | None:
    """POST the status to the request's callback URL; returns the HTTP status (``None`` if the
    request has no callback or its URL is now refused). Records the try; raises
    ``CallbackError`` on failure (the task retries)."""
    alias = region_alias(region=region)
    request = PrivacyRequest.objects.using(alias).get(pk=request_id)
    if not request.callback_url or request.client_id is None:
        return None
    client = ApiClient.objects.filter(pk=request.client_id).first()
    if client is None or not client.callback_secret:
        return None
    event_id = callback_event_id(request_id=request.pk, status=status)
    attempts = CallbackAttempt.objects.using(alias)
    attempt = attempts.filter(event_id=event_id).count() + 1
    sent_at = timezone.now()

    def record(code: int | None, error: str = "", duration_ms: int = 0) -> None:
        attempts.create(
            request_id=request.pk,
            event_id=event_id,
            attempt=attempt,
            status=status,
            status_code=code,
            error=error[:200],
            duration_ms=duration_ms,
            sent_at=sent_at,
        )

    try:
        outbound_url_check(url=request.callback_url)
    except OutboundUrlError as exc:
        record(None, f"refused: {exc}")
        return None
    body = json.dumps(
        {
            "event_id": str(event_id),
            "attempt": attempt,
            "id": str(request.pk),
            "type": request.type,
            "status": status,
            "current_status": request.status,
            "sent_at": sent_at.isoformat(),
        },
        separators=(",", ":"),
    ).encode()
    code, error, duration_ms = _signed_post(
        url=request.callback_url,
        secret=client.callback_secret,
        event_id=event_id,
        attempt=attempt,
        body=body,
    )
    record(code, error, duration_ms)
    if code is None or not 200 <= code < 300:
        raise CallbackError(f"callback failed: {code or error}")
    audit_append(
        using=alias,
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
