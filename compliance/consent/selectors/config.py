"""Reads of the global consent configuration (purposes, sources, notices)."""

from __future__ import annotations

from collections.abc import Iterable

from compliance.consent.models import Purpose
from compliance.regions import country_of


def purposes_by_key(*, keys: Iterable[str] | None = None) -> dict[str, Purpose]:
    """Active purposes by key (all of them when ``keys`` is None); one query."""
    qs = Purpose.objects.filter(is_active=True)
    if keys is not None:
        qs = qs.filter(key__in=list(keys))
    return {p.key: p for p in qs}


def jurisdiction_matches(*, jurisdiction: str, codes: Iterable[str]) -> bool:
    """``FR`` matches ``FR``; ``US-CA`` matches ``US-CA`` or ``US``; ``*`` matches everything."""
    codes = set(codes)
    if "*" in codes:
        return True
    jurisdiction = jurisdiction.strip().upper()
    return jurisdiction in codes or country_of(jurisdiction=jurisdiction) in codes
