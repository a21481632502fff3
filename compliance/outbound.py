"""Where the toolkit may send requests: status callbacks and webhooks.

With ``COMPLIANCE_OUTBOUND_ALLOW_LOCAL`` off (production settings) a URL must be ``https`` and
its host must resolve only to public addresses: never loopback, private (RFC 1918, ULA),
link-local (cloud metadata at 169.254.169.254), CGNAT, multicast, reserved or unspecified.
On (the embedded default, with ``DJANGO_DEBUG``): plain ``http`` and local receivers are
accepted for development. URLs are checked when saved and again before every delivery (the
name may resolve elsewhere by then).
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.request
from urllib.parse import urlsplit

from compliance.conf import compliance_settings
from compliance.errors import InputError


class OutboundUrlError(InputError):
    """The URL may not receive requests from the toolkit (the message says why)."""


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def outbound_url_check(*, url: str) -> None:
    """Raise ``OutboundUrlError`` unless ``url`` may receive callbacks and webhooks."""
    parts = urlsplit(url or "")
    allow_local = compliance_settings.OUTBOUND_ALLOW_LOCAL
    schemes = ("http", "https") if allow_local else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise OutboundUrlError(
            "must be an https URL" if not allow_local else "must be an http(s) URL"
        )
    if allow_local:
        return
    try:
        port = parts.port or 443
        addresses = _resolve(parts.hostname, port)
    except (OSError, ValueError, UnicodeError):
        raise OutboundUrlError(f"host {parts.hostname!r} does not resolve") from None
    private = [a for a in addresses if not _public(a)]
    if not addresses or private:
        raise OutboundUrlError(
            f"host {parts.hostname!r} resolves to a loopback, private or link-local address "
            f"({', '.join(private) or 'none'}); only public addresses receive callbacks"
        )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is the receiver's answer (3xx), never followed: it could lead anywhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


#: ``outbound_opener.open(request, timeout=...)``: urllib without following redirects
outbound_opener = urllib.request.build_opener(_NoRedirect)
