"""Errors of the segments services (definitions, memberships and stay closing)."""

from __future__ import annotations

from compliance.errors import ApplicationError, InputError


class MembershipInputError(InputError):
    """Bad arguments (unknown reason, a subject both entering and exiting)."""

    field = "reason"


class SegmentGovernanceError(ApplicationError):
    """A governance rule refused the change. ``code`` is stable, ``field`` names the culprit."""

    #: the API's status per ``code`` (400 for any other)
    STATUS_OF_CODE = {
        "forbidden": 403,
        "own_suggestion": 403,
        "exists": 409,
        "illegal_transition": 409,
        "incomplete": 409,
        "retired": 409,
    }

    def __init__(self, message: str, *, code: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field
        self.status_code = self.STATUS_OF_CODE.get(code, 400)
