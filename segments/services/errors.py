"""Errors of the segments services (definitions, memberships and stay closing)."""

from __future__ import annotations


class MembershipInputError(ValueError):
    """Bad arguments (unknown reason, a subject both entering and exiting)."""


class SegmentGovernanceError(Exception):
    """A governance rule refused the change. ``code`` is stable, ``field`` names the culprit."""

    def __init__(self, message: str, *, code: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field
