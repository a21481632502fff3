"""Retention settings; each property documents one setting and its default."""

from __future__ import annotations

from django.conf import settings


class RetentionSettings:
    def _get(self, name: str, default):
        return getattr(settings, f"COMPLIANCE_RETENTION_{name}", default)

    @property
    def AUDIT_MIN_DAYS(self) -> int:
        """Legal minimum age of audit entries: a rule for ``audit_entries`` with a shorter
        maximum age is refused. Default 2190 (six years)."""
        return int(self._get("AUDIT_MIN_DAYS", 2190))

    @property
    def BATCH_SIZE(self) -> int:
        """Rows removed per transaction. Default 2000."""
        return int(self._get("BATCH_SIZE", 2000))


retention_settings = RetentionSettings()
