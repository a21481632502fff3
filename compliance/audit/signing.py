"""What a checkpoint signature covers. Pure Python: the offline verifier mirrors it.

The signed message of a checkpoint is the UTF-8 text (no trailing newline)::

    compliance-audit-checkpoint/v1
    <chain_id>
    <size>
    <head_hash>
    <signed_at as YYYY-MM-DDTHH:MM:SS.ffffffZ>
    <key_id>

lines separated by ``\\n``. The signature is Ed25519 over those bytes, stored and exported as the
hex of the raw 64-byte signature.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

CHECKPOINT_FORMAT = "compliance-audit-checkpoint/v1"


def checkpoint_message(
    *, chain_id: str, size: int, head_hash: str, signed_at: str, key_id: str
) -> bytes:
    return "\n".join(
        [CHECKPOINT_FORMAT, chain_id, str(size), head_hash, signed_at, key_id]
    ).encode()


def signature_valid(*, public_key: Ed25519PublicKey, message: bytes, signature_hex: str) -> bool:
    try:
        public_key.verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError):
        return False
    return True
