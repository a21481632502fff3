"""Model fields that keep secrets encrypted at rest.

``SealedTextField`` stores ``sealed:v1:<base64(nonce || AES-256-GCM ciphertext)>``, under a key
derived from ``COMPLIANCE_ROOT_KEY`` (HKDF, ``sealed-field/v1``), with the model and field name
as associated data (a sealed value moved to another column does not open). Python code sees the
plaintext. A value without the prefix (written before the field was sealed) is returned as it
is and sealed on the next save.
"""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import models

from compliance import crypto

PREFIX = "sealed:v1:"


def _key() -> bytes:
    return crypto._derive(crypto._root(), "sealed-field/v1")


def seal(*, plaintext: str, aad: str) -> str:
    nonce = os.urandom(crypto.NONCE_BYTES)
    sealed = nonce + AESGCM(_key()).encrypt(nonce, plaintext.encode(), aad.encode())
    return PREFIX + base64.b64encode(sealed).decode()


def unseal(*, stored: str, aad: str) -> str:
    if not stored.startswith(PREFIX):
        return stored
    raw = base64.b64decode(stored[len(PREFIX) :])
    try:
        plain = AESGCM(_key()).decrypt(
            raw[: crypto.NONCE_BYTES], raw[crypto.NONCE_BYTES :], aad.encode()
        )
    except Exception as exc:  # InvalidTag: another root key, or a value moved between columns
        raise crypto.DecryptionError(f"sealed value of {aad} could not be opened") from exc
    return plain.decode()


class SealedTextField(models.TextField):
    """A text secret encrypted at rest; not searchable (each write uses a fresh nonce)."""

    def _aad(self) -> str:
        return f"{self.model._meta.label}.{self.name}"

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return unseal(stored=value, aad=self._aad())

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "" or value.startswith(PREFIX):
            return value
        return seal(plaintext=value, aad=self._aad())
