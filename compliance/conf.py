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
    def DSAR_AUTO_APPROVE_METHODS(self) -> list[str]:
        """Verification methods for which erasure needs no privacy officer approval. Default none."""
        return list(self._get("DSAR_AUTO_APPROVE_METHODS", []))

    @property
    def CONTROLLER_NAME(self) -> str:
        """The controller named in access reports and erasure certificates (GDPR Art. 13/15).
        Default ``"The data controller"``: set it to your organisation's legal name."""
        return str(self._get("CONTROLLER_NAME", "The data controller"))

    @property
    def CONTROLLER_EMAIL(self) -> str:
        """Where a person exercises their rights (reports and certificates show it). Default
        ``privacy@example.com``: set it to your privacy inbox."""
        return str(self._get("CONTROLLER_EMAIL", "privacy@example.com"))

    @property
    def CONTROLLER_ADDRESS(self) -> str:
        """The controller's postal address (optional). Default empty."""
        return str(self._get("CONTROLLER_ADDRESS", ""))

    @property
    def DPO_EMAIL(self) -> str:
        """The data protection officer's address (GDPR Art. 13(1)(b)), optional. Default empty."""
        return str(self._get("DPO_EMAIL", ""))

    @property
    def GPC_BINDING_JURISDICTIONS(self) -> list[str]:
        """Jurisdictions where ``Sec-GPC: 1`` is a binding opt-out (sale, sharing, targeted ads).
        Default: the US states whose law honours GPC (CA, CO, CT, NJ, OR, TX, MT, DE, NH, MN,
        MD). Entries match a jurisdiction exactly (``US-CA``) or by country (``US``)."""
        return list(
            self._get(
                "GPC_BINDING_JURISDICTIONS",
                ["US-CA", "US-CO", "US-CT", "US-NJ", "US-OR", "US-TX", "US-MT", "US-DE",
                 "US-NH", "US-MN", "US-MD"],
            )
        )

    @property
    def OUTBOUND_ALLOW_LOCAL(self) -> bool:
        """Callbacks and webhooks may go to ``http://`` and to loopback, private or link-local
        addresses (local development). Default off; the embedded settings turn it on with
        ``DJANGO_DEBUG``, production settings only through ``COMPLIANCE_OUTBOUND_ALLOW_LOCAL``."""
        return bool(self._get("OUTBOUND_ALLOW_LOCAL", False))

    @property
    def SEGMENTS_PAUSE_OVERDUE(self) -> bool:
        """Pause active segments past their review date (daily beat job). Default ``False``."""
        return bool(self._get("SEGMENTS_PAUSE_OVERDUE", False))

    @property
    def AUDIT_CHECKPOINT_SECONDS(self) -> float:
        """Seconds between signed (and witnessed) checkpoints of every audit chain that moved
        (beat). Default 60."""
        return float(self._get("AUDIT_CHECKPOINT_SECONDS", 60.0))

    @property
    def AUDIT_WITNESS_DIR(self) -> str:
        """Directory outside the database where every signed checkpoint is also written (one
        file per checkpoint, per chain). Default ``<VAR_DIR>/witness``; empty turns it off."""
        return str(self._get("AUDIT_WITNESS_DIR", settings.VAR_DIR / "witness") or "")

    @property
    def AUDIT_WITNESS_URL(self) -> str:
        """Optional HTTP witness: every checkpoint is also POSTed there, signed. Default none."""
        return self._get("AUDIT_WITNESS_URL", "") or ""

    @property
    def AUDIT_WITNESS_TIMEOUT(self) -> float:
        """Seconds before a POST to the HTTP witness gives up. Default 10."""
        return float(self._get("AUDIT_WITNESS_TIMEOUT", 10.0))


compliance_settings = ComplianceSettings()
