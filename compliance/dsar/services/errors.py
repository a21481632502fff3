"""Errors of the dsar services; the API maps each to a 4xx with its ``code``."""

from __future__ import annotations

from compliance.errors import InputError


class RequestError(InputError):
    """A request that cannot be opened or acted on; ``field`` names the culprit input."""

    code = "invalid"
    status_code = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class IllegalTransitionError(RequestError):
    code = "illegal_transition"
    status_code = 409


class IdempotencyConflictError(RequestError):
    """The same ``Idempotency-Key`` was used before with a different body."""

    code = "idempotency_conflict"
    status_code = 409


class LegalHoldError(RequestError):
    """An active legal hold blocks the erasure; the message carries the hold's reason."""

    code = "legal_hold"
    status_code = 409


class NotAvailableError(RequestError):
    """The package or receipt does not exist (yet, any more, or for this type of request)."""

    code = "not_available"
    status_code = 409


class ExpiredError(RequestError):
    code = "expired"
    status_code = 410
