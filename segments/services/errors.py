"""Errors of the membership services (``memberships_apply`` and the stay-closing paths)."""

from __future__ import annotations


class MembershipInputError(ValueError):
    """Bad arguments (unknown reason, a subject both entering and exiting)."""
