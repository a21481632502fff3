"""One settings object for the toolkit; each property documents one setting and its default.

Read settings through ``compliance_settings.NAME``, never ``settings.COMPLIANCE_NAME`` directly,
so defaults live in one place. Mistakes are reported by the system checks in
``compliance.checks``.
"""

from __future__ import annotations

from django.conf import settings


class ComplianceSettings:
    def _get(self, name: str, default):
        return getattr(settings, f"COMPLIANCE_{name}", default)

    @property
    def REGIONS(self) -> list[str]:
        """Configured regions; each needs a database alias of the same name. Default eu, us."""
        return list(self._get("REGIONS", ["eu", "us"]))

    @property
    def DEFAULT_REGION(self) -> str:
        """Region for countries absent from ``COUNTRY_REGION_MAP``. Default ``us``."""
        return self._get("DEFAULT_REGION", "us")

    @property
    def COUNTRY_REGION_MAP(self) -> dict[str, str]:
        """Country code -> region. Default: EU and EEA countries -> ``eu``."""
        from compliance.regions import EU_EEA_COUNTRIES

        default = {code: "eu" for code in EU_EEA_COUNTRIES}
        return self._get("COUNTRY_REGION_MAP", default)

    @property
    def ROOT_KEY(self) -> str:
        """Base64 32-byte root key; HKDF derives region KEKs and the blind-index key from it."""
        return self._get("ROOT_KEY", "")

    @property
    def SIGNING_KEY(self) -> str:
        """Base64 Ed25519 private key seed (32 bytes) for checkpoints, manifests, receipts."""
        return self._get("SIGNING_KEY", "")

    @property
    def GLOBAL_APPS(self) -> list[str]:
        """App labels of third-party apps whose models are all global."""
        return list(self._get("GLOBAL_APPS", []))


compliance_settings = ComplianceSettings()
