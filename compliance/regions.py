"""Regions: which database alias holds a region, and which region a country belongs to.

Regions are resolved once, when a subject is first seen (``region_for_country``), and never
changed silently afterwards.
"""

from __future__ import annotations

from compliance.conf import EU_EEA_COUNTRIES, compliance_settings
from compliance.errors import InputError

__all__ = [
    "EU_EEA_COUNTRIES",
    "UnknownRegionError",
    "country_of",
    "region_alias",
    "region_for_country",
    "regions",
]


class UnknownRegionError(InputError):
    """A region name that is not configured in ``COMPLIANCE_REGIONS``."""


def regions() -> list[str]:
    return list(compliance_settings.REGIONS)


def region_alias(*, region: str) -> str:
    """Database alias holding ``region``; raises ``UnknownRegionError`` for unknown regions."""
    if region not in compliance_settings.REGIONS:
        raise UnknownRegionError(
            f"region {region!r} is not configured; configured regions: "
            f"{', '.join(compliance_settings.REGIONS)} (setting COMPLIANCE_REGIONS)"
        )
    return region


def country_of(*, jurisdiction: str) -> str:
    """ISO 3166-1 alpha-2 country of a jurisdiction such as ``"FR"`` or ``"US-CA"``."""
    return jurisdiction.strip().upper().split("-", 1)[0]


def region_for_country(*, country: str | None) -> str:
    """Region for a country code or jurisdiction (``"DE"``, ``"US-CA"``); default if unknown."""
    if country:
        code = country_of(jurisdiction=country)
        mapped = compliance_settings.COUNTRY_REGION_MAP.get(code)
        if mapped:
            return mapped
    return compliance_settings.DEFAULT_REGION
