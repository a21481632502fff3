"""Retention's settings: ``retention_settings.NAME`` is ``compliance_settings.RETENTION_NAME``.

Declared, with their defaults and docs, in ``compliance.conf`` (one lookup rule for all).
"""

from __future__ import annotations

from compliance.conf import compliance_settings

retention_settings = compliance_settings.section("RETENTION")
