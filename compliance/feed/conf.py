"""Settings of the change feed; each property documents one setting and its default.

Each value may be set in Django settings (``COMPLIANCE_FEED_<NAME>``) or, for worker processes
started by tests and operators, in the environment variable of the same name.
"""

from __future__ import annotations

import os

from django.conf import settings


class FeedSettings:
    def _get(self, name: str, default):
        key = f"COMPLIANCE_FEED_{name}"
        return getattr(settings, key, os.environ.get(key, default))

    @property
    def BATCH_SIZE(self) -> int:
        """Changes per webhook request. Default 500."""
        return int(self._get("BATCH_SIZE", 500))

    @property
    def HTTP_TIMEOUT(self) -> float:
        """Seconds to wait for a webhook's response. Default 5."""
        return float(self._get("HTTP_TIMEOUT", 5))

    @property
    def LEASE_SECONDS(self) -> float:
        """How long a delivery run owns a subscription's cursor in a region before another run
        may take over (a worker killed mid-delivery). Renewed every batch. Default 30."""
        return float(self._get("LEASE_SECONDS", 30))

    @property
    def RETRY_BASE_SECONDS(self) -> float:
        """First retry delay after a failed delivery; doubles each attempt. Default 1."""
        return float(self._get("RETRY_BASE_SECONDS", 1))

    @property
    def RETRY_MAX_SECONDS(self) -> float:
        """Longest retry delay. Default 300."""
        return float(self._get("RETRY_MAX_SECONDS", 300))

    @property
    def SWEEP_SECONDS(self) -> float:
        """Beat interval of the safety-net sweep per region. Default 10."""
        return float(self._get("SWEEP_SECONDS", 10))

    @property
    def RUN_SECONDS(self) -> float:
        """A delivery run hands over to a fresh task after this long. Default 60."""
        return float(self._get("RUN_SECONDS", 60))

    @property
    def ERASURE_NOTICE_TTL_DAYS(self) -> float:
        """Days an erasure notice (a ``retract`` change with reason ``erasure``, the only
        outbox row erasure keeps) stays for pull consumers. The sweep removes it once it is
        older than this AND every active webhook subscription it is meant for has received it
        (with no such subscription: after this many days). Default 30."""
        return float(self._get("ERASURE_NOTICE_TTL_DAYS", 30))


feed_settings = FeedSettings()
