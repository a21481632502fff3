"""Keys and primitives: blind indexes, per-subject data keys, field encryption, signatures.

* The root key (``COMPLIANCE_ROOT_KEY``) never encrypts data itself; HKDF-SHA256 derives
  the blind-index key and one key-encryption key (KEK) per region from it.
* Each subject has a random 256-bit data key (DEK), stored wrapped by its region's KEK
  (AES-256-GCM, the subject id as associated data). Personal fields are AES-256-GCM under the DEK.
  Destroying the wrapped DEK makes every field of that subject unreadable (crypto-shredding).
* Blind indexes are HMAC-SHA256 over the identifier type and its normalised value: lookups
  without plaintext outside the region. They are pseudonymous personal data, not anonymous.
* Checkpoints, manifests and receipts are signed with Ed25519 (``COMPLIANCE_SIGNING_KEY``).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
from collections.abc import Mapping
from functools import lru_cache
from typing import TypeVar

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from compliance.conf import compliance_settings
from compliance.errors import ApplicationError

NONCE_BYTES = 12
#: a subject id as text or as UUID (the associated data is its text either way)
K = TypeVar("K")
KEY_VERSION = "v1"


class DecryptionError(ApplicationError, ValueError):
    """Ciphertext could not be decrypted (wrong key, destroyed key, or tampered data)."""


@lru_cache(maxsize=64)
def _derive(root_b64: str, info: str) -> bytes:
    root = base64.b64decode(root_b64)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info.encode()).derive(root)


def _root() -> str:
    root = compliance_settings.ROOT_KEY
    if not root:
        raise RuntimeError("COMPLIANCE_ROOT_KEY is not set.")
    return root


def blind_index(*, identifier_type: str, normalized_value: str) -> str:
    """Hex HMAC-SHA256 of ``type`` and the normalised value under the blind-index key."""
    key = _derive(_root(), "blind-index/v1")
    message = f"{identifier_type}\x00{normalized_value}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def region_kek(*, region: str) -> bytes:
    return _derive(_root(), f"region-kek/{region}/{KEY_VERSION}")


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def wrap_data_key(*, region: str, subject_id: str, data_key: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(region_kek(region=region)).encrypt(nonce, data_key, subject_id.encode())


def unwrap_data_key(*, region: str, subject_id: str, wrapped: bytes) -> bytes:
    return data_keys_unwrap(region=region, wrapped={subject_id: wrapped})[subject_id]


def data_keys_unwrap(*, region: str, wrapped: Mapping[K, bytes]) -> dict[K, bytes]:
    """``unwrap_data_key`` of many subjects of ``region`` (subject id, as text or UUID ->
    wrapped key), the region's key derived once; ``DecryptionError`` if any cannot be
    unwrapped."""
    aead = AESGCM(region_kek(region=region))
    keys = {}
    for subject_id, blob in wrapped.items():
        try:
            keys[subject_id] = aead.decrypt(
                bytes(blob[:NONCE_BYTES]), bytes(blob[NONCE_BYTES:]), str(subject_id).encode()
            )
        except Exception as exc:  # InvalidTag
            raise DecryptionError("subject data key could not be unwrapped") from exc
    return keys


def encrypt(*, data_key: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(data_key).encrypt(nonce, plaintext, aad)


def decrypt(*, data_key: bytes, ciphertext: bytes, aad: bytes = b"") -> bytes:
    try:
        return AESGCM(data_key).decrypt(
            bytes(ciphertext[:NONCE_BYTES]), bytes(ciphertext[NONCE_BYTES:]), aad
        )
    except Exception as exc:
        raise DecryptionError("field could not be decrypted") from exc


def signing_key() -> Ed25519PrivateKey:
    return _signing_key(compliance_settings.SIGNING_KEY)


@functools.lru_cache(maxsize=4)
def _signing_key(seed: str) -> Ed25519PrivateKey:
    """The key of a seed, loaded once (keyed by the setting's value: a new key takes effect
    at once)."""
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(seed))


def public_key() -> Ed25519PublicKey:
    return signing_key().public_key()


def public_key_pem() -> bytes:
    return public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def sign(*, message: bytes) -> bytes:
    return signing_key().sign(message)


def key_id() -> str:
    """Short fingerprint of the signing public key (first 16 hex chars of its SHA-256)."""
    return _key_id(compliance_settings.SIGNING_KEY)


@functools.lru_cache(maxsize=4)
def _key_id(seed: str) -> str:
    key = _signing_key(seed).public_key()
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]
