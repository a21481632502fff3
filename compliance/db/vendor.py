"""Which database an alias is: asked by the sql modules only, never by domain code."""

from __future__ import annotations

from django.db import connections


def is_postgresql(using: str) -> bool:
    """Whether database ``using`` is PostgreSQL (else the embedded SQLite default)."""
    return connections[using].vendor == "postgresql"


def vendor_name(using: str) -> str:
    """The database's kind as Django names it (``postgresql``, ``sqlite``): for display."""
    return connections[using].vendor
