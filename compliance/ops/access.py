"""Who may read ``/metrics``: a bearer token (``METRICS_TOKEN``) from anywhere, or any client
from a network of ``METRICS_ALLOW`` (loopback by default).

A request that came through a proxy (it carries ``X-Forwarded-For``, ``Forwarded`` or
``X-Real-IP``) is never let in by its address, which is then the proxy's: only the token opens
it. A proxy that adds none of these headers must not route ``/metrics``.
"""

from __future__ import annotations

import hmac
import ipaddress
from functools import lru_cache

from compliance.conf import compliance_settings


@lru_cache(maxsize=8)
def _networks(allow: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in allow)


def metrics_access(*, authorization: str, remote_addr: str, proxied: bool) -> int:
    """200 when allowed, 401 for a wrong token, 403 for a client outside the networks (or
    ``proxied``: its address is not its own)."""
    token = compliance_settings.METRICS_TOKEN
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() == "bearer" and given:
        if token and hmac.compare_digest(given.strip().encode(), token.encode()):
            return 200
        return 401
    if proxied:
        return 403
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return 403
    if any(address in net for net in _networks(tuple(compliance_settings.METRICS_ALLOW))):
        return 200
    return 403
