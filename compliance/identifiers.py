"""Identifier normalisation and validation, before blind-indexing or encryption."""

from __future__ import annotations

import re
from dataclasses import dataclass

from compliance.errors import InputError
from compliance.models.subjects import IdentifierType

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9]{6,15}$")
MAX_VALUE_LENGTH = 320
#: the types, once (``IdentifierType.values`` builds a new list at every call)
_TYPES = frozenset(IdentifierType.values)


class IdentifierError(InputError):
    """An identifier that cannot be used; ``field`` names what is wrong (no value echoed)."""

    def __init__(self, message: str, *, field: str = "value") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Identifier:
    type: str
    value: str  # normalised


def identifier_normalize(*, identifier_type: str, value: str) -> Identifier:
    """Validate and normalise one identifier: e-mail lower-cased, phone digits with ``+``."""
    if not isinstance(identifier_type, str) or identifier_type not in _TYPES:
        raise IdentifierError(
            f"unknown identifier type; use one of {', '.join(IdentifierType.values)}",
            field="type",
        )
    if not isinstance(value, str) or not value.strip():
        raise IdentifierError("identifier value must be a non-empty string")
    value = value.strip()
    if len(value) > MAX_VALUE_LENGTH:
        raise IdentifierError(f"identifier value longer than {MAX_VALUE_LENGTH} characters")
    if identifier_type == IdentifierType.EMAIL:
        value = value.lower()
        if not _EMAIL.match(value):
            raise IdentifierError("not a valid e-mail address")
    elif identifier_type == IdentifierType.PHONE:
        value = re.sub(r"[\s().-]", "", value)
        if not _PHONE.match(value):
            raise IdentifierError("phone must be 6 to 15 digits, optionally with a leading +")
    return Identifier(type=identifier_type, value=value)
