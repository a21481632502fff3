"""The change feed's settings: ``feed_settings.NAME`` is ``compliance_settings.FEED_NAME``.

Declared, with their defaults and docs, in ``compliance.conf`` (one lookup rule for all).
"""

from __future__ import annotations

from compliance.conf import compliance_settings

feed_settings = compliance_settings.section("FEED")
