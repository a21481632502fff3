"""Erasure receipts: canonical JSON signed with Ed25519 (``compliance.crypto.sign``).

Verify offline with the public key (``compliance.crypto.public_key_pem()``): the signature is
over ``receipt_canonical(receipt)`` (compact, key-sorted UTF-8 JSON), base64-encoded.
"""

from __future__ import annotations

import base64
import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from compliance import crypto


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
