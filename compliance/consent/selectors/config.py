"""Reads of the global consent configuration (purposes, sources, notices)."""

from __future__ import annotations

from collections.abc import Iterable

from compliance.consent.models import Purpose
from compliance.consent.selectors.cached import configuration
from compliance.regions import country_of


def purposes_by_key(*, keys: Iterable[str] | None = None) -> dict[str, Purpose]:
    """Active purposes by key (all of them when ``keys`` is None), from the process's cached
    configuration (``selectors.cached``)."""
    purposes = configuration().purposes
    if keys is None:
        return dict(purposes)
    return {key: purposes[key] for key in keys if key in purposes}


def jurisdiction_matches(*, jurisdiction: str, codes: Iterable[str]) -> bool:
    """``FR`` matches ``FR``; ``US-CA`` matches ``US-CA`` or ``US``; ``*`` matches everything."""
    codes = set(codes)
    if "*" in codes:
        return True
    jurisdiction = jurisdiction.strip().upper()
    return jurisdiction in codes or country_of(jurisdiction=jurisdiction) in codes
