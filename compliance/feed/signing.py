"""Webhook signatures: HMAC-SHA256 over ``"<timestamp>.<body>"`` with the subscription secret.

Headers of every request::

    X-Compliance-Timestamp: 1767225600            (Unix seconds when the request was signed)
    X-Compliance-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>

A receiver recomputes the HMAC over the raw body bytes, compares in constant time, and
refuses timestamps older than a few minutes (replay). See docs/feed.md.
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Compliance-Timestamp"
SIGNATURE_HEADER = "X-Compliance-Signature"
SCHEME = "v1"


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def signed_headers(*, secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret=secret, timestamp=timestamp, body=body),
    }


def signature_valid(
    *, secret: str, body: bytes, timestamp: str, signature_header: str, tolerance: int = 300
) -> bool:
    """What a receiver does: recompute, compare in constant time, refuse stale timestamps."""
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs(time.time() - sent) > tolerance:
        return False
    expected = signature(secret=secret, timestamp=sent, body=body)
    return hmac.compare_digest(expected, signature_header or "")
