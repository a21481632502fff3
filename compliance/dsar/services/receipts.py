"""Erasure receipts: canonical JSON signed with Ed25519 (``compliance.crypto.sign``).

Verify offline with the public key (``compliance.crypto.public_key_pem()``): the signature is
over ``receipt_canonical(receipt)`` (compact, key-sorted UTF-8 JSON), base64-encoded.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.template.loader import render_to_string

from compliance import crypto
from compliance.dsar.services.report import controller_contact, short_reference
from compliance.personal_data import personal_data_models


def receipt_body(
    *,
    request,
    now: datetime,
    subjects: int,
    tables: dict[str, int],
    memberships_exited: int,
    identifiers_suppressed: int,
    directory_rows_removed: int,
    sweep: dict[str, int],
    retained: dict,
    mode: str | None = None,
    receipt_id: str | None = None,
) -> dict:
    """The receipt of a finished erasure (``receipt_version`` 1), ready to be signed. ``mode``
    is set by the bulk path only (``"bulk"``); ``receipt_id`` defaults to a new random one."""
    receipt = {
        "receipt_version": 1,
        "receipt_id": receipt_id or str(uuid.uuid4()),
        "request_id": str(request.pk),
        "region": request.region,
        "request_type": request.type,
        "regulation": request.regulation,
        "received_at": request.received_at.isoformat(),
        "approved_at": request.approved_at.isoformat() if request.approved_at else None,
        "started_at": request.started_at.isoformat() if request.started_at else None,
        "completed_at": now.isoformat(),
        "due_at": request.due_at.isoformat(),
        "on_time": now <= request.due_at,
        "subjects": subjects,
        "tables": tables,
        "memberships_exited": memberships_exited,
        "identifiers_suppressed": identifiers_suppressed,
        "directory_rows_removed": directory_rows_removed,
        "sweep": sweep,
        # kept on purpose (e.g. the feed's erasure notices until delivered), with why
        "retained": retained,
        "signing_key_id": crypto.key_id(),
    }
    if mode is not None:
        receipt["mode"] = mode
    return receipt


def receipt_canonical(receipt: dict) -> bytes:
    return json.dumps(receipt, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def receipt_sign(receipt: dict) -> str:
    return base64.b64encode(crypto.sign(message=receipt_canonical(receipt))).decode()


def receipt_verify(*, receipt: dict, signature: str, public_key_pem: bytes | None = None) -> bool:
    """True if ``signature`` (base64) signs ``receipt`` under the given (or our) public key."""
    key = load_pem_public_key(public_key_pem) if public_key_pem is not None else crypto.public_key()
    if not isinstance(key, Ed25519PublicKey):
        return False
    try:
        key.verify(base64.b64decode(signature), receipt_canonical(receipt))
    except (InvalidSignature, ValueError):
        return False
    return True


def erasure_certificate_html(*, request) -> str:
    """A human-readable certificate of a finished erasure (HTML, self-contained, printable),
    beside the signed JSON receipt it restates: what was erased per kind of data, what was kept
    and why, when, and how to check the signature."""
    receipt = request.receipt or {}
    described = {e.label: e for e in personal_data_models()}
    rows = [
        {
            "kind": described[label].model._meta.verbose_name_plural.capitalize()
            if label in described
            else label,
            "label": label,
            "rows": count,
        }
        for label, count in (receipt.get("tables") or {}).items()
    ]
    return render_to_string(
        "dsar/erasure_certificate.html",
        {
            "receipt": receipt,
            "rows": rows,
            "signature": request.receipt_signature,
            "valid": receipt_verify(receipt=receipt, signature=request.receipt_signature),
            "public_key_pem": crypto.public_key_pem().decode(),
            "controller": controller_contact(),
            "reference": short_reference(request.pk),
        },
    )
