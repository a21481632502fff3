"""The one base of every error the toolkit raises on purpose: ``ApplicationError``.

An error carries a stable ``code`` (the API's ``error.code``), the input ``field`` it concerns
(``None`` when it concerns no single input) and the HTTP ``status_code`` the API answers with.
Services raise them; the API's one exception handler (``compliance.api.errors``) turns them into
the error envelope, and views never translate them by hand. Errors with a status of 500 or more
are faults of the system, not of the input: the API answers a generic 500 without their message.

The intermediate classes keep the built-in base the errors had before (``ValueError`` for bad
input, ``RuntimeError`` for faults), so ``except ValueError`` around a service keeps working.
"""

from __future__ import annotations


class ApplicationError(Exception):
    """Base of the toolkit's errors. ``fields`` (several fields at once) overrides ``field``."""

    code: str = "server_error"
    status_code: int = 500
    field: str | None = None
    fields: dict[str, list[str]] | None = None

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        field: str | None = None,
        fields: dict[str, list[str]] | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        if field is not None:
            self.field = field
        if fields is not None:
            self.fields = fields
        if status_code is not None:
            self.status_code = status_code

    def field_messages(self) -> dict[str, list[str]]:
        """Why, per input field: ``fields`` if set, else ``{field: [message]}``, else empty."""
        if self.fields is not None:
            return self.fields
        return {self.field: [str(self)]} if self.field else {}


class InputError(ApplicationError, ValueError):
    """The input is wrong (400 ``invalid`` unless a subclass says otherwise)."""

    code = "invalid"
    status_code = 400


class NotFoundError(ApplicationError, LookupError):
    """The object does not exist, or the caller may not know that it does (404)."""

    code = "not_found"
    status_code = 404


class ConflictError(ApplicationError):
    """The input is well formed but the state of things refuses it (409)."""

    code = "conflict"
    status_code = 409


class InternalError(ApplicationError, RuntimeError):
    """A fault of the system or its configuration, not of the caller's input (500)."""
